"""The real clients against a real glance-api, unchanged: the ``glance``
CLI, python-glanceclient's v2 ``Client`` and openstacksdk, each through
the whole image lifecycle: create -> upload -> download and compare bytes
-> list with filters -> update properties -> tag -> share with a member
who accepts -> deactivate/reactivate -> delete.

The clients send no identity headers (the CLI and glanceclient only a
dummy token), so the no-auth pipeline runs them as admin of project
``default``. The member who accepts the share is another project; the
clients cannot send that project's identity headers, so that one step uses
raw requests (``accept_as_member``).
"""

import io
import os
import re
import subprocess
import sys

import pytest
import requests

from tests.functional import helpers

UUID_IN_TEXT = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def accept_as_member(server, image_id, member):
    """The member project accepts the share and then sees the image in its
    default list (raw HTTP: the clients can't act as that project)."""
    member_api = helpers.Api(server, member)
    resp = member_api.get(f'/v2/images?member_status=pending&id={image_id}')
    assert resp.status_code == 200, resp.text
    assert [i['id'] for i in resp.json()['images']] == [image_id]
    assert image_id not in member_api.list_ids()
    resp = member_api.put(f'/v2/images/{image_id}/members/{member}',
                          json={'status': 'accepted'})
    assert resp.status_code == 200, resp.text
    assert resp.json()['status'] == 'accepted'
    assert image_id in member_api.list_ids(visibility='shared')
    resp = member_api.download(image_id)
    assert resp.status_code == 200
    return resp.content


def raw_image(server, image_id):
    resp = requests.get(f'{server.url}/v2/images/{image_id}', timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def assert_hashes(image, data):
    assert image['size'] == len(data)
    assert image['checksum'] == helpers.md5(data)
    assert image['os_hash_algo'] == 'sha512'
    assert image['os_hash_value'] == helpers.sha512(data)


# -------------------------------------------------------------- glance CLI


def glance_cli(server):
    """A function running the glance CLI against ``server``."""
    executable = os.path.join(os.path.dirname(sys.executable), 'glance')
    if not os.path.exists(executable):
        pytest.skip(f'{executable} not installed (python-glanceclient)')
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('OS_')}

    def run(*args, check=True):
        # stdin closed (as "<&-"): with any open stdin, image-create would
        # upload it as the image data.
        result = subprocess.run(
            ['sh', '-c', 'exec "$@" <&-', 'sh', executable,
             '--os-image-url', server.url, '--os-auth-token', 'anything',
             *args],
            capture_output=True, text=True, timeout=120, env=env,
            check=False)
        if check:
            assert result.returncode == 0, (args, result.stdout,
                                            result.stderr)
        return result

    return run


def parse_table(output):
    """``| field | value |`` rows of a glance CLI table as a dict
    (wrapped values are joined)."""
    fields = {}
    last = None
    for line in output.splitlines():
        if not line.startswith('|'):
            continue
        cells = [cell.strip() for cell in line.strip('|').split('|')]
        if len(cells) != 2 or cells == ['Property', 'Value']:
            continue
        key, value = cells
        if key:
            fields[key] = value
            last = key
        elif last:
            fields[last] += value
    return fields


@pytest.mark.timeout(600)
def test_glance_cli_lifecycle(glance, tmp_path):
    run = glance_cli(glance)
    suite = helpers.new_project()
    member = helpers.new_project()
    data = os.urandom(2 * 1024 * 1024 + 123)
    source = tmp_path / 'source.img'
    source.write_bytes(data)

    created = parse_table(run(
        'image-create', '--name', 'cli-image', '--disk-format', 'raw',
        '--container-format', 'bare', '--min-ram', '64',
        '--property', f'suite={suite}', '--property', 'os_distro=cirros'
    ).stdout)
    image_id = created['id']
    assert created['status'] == 'queued'
    assert created['suite'] == suite

    run('image-upload', '--file', str(source), image_id)
    shown = parse_table(run('image-show', image_id).stdout)
    assert shown['status'] == 'active'
    assert shown['disk_format'] == 'raw'
    assert_hashes(raw_image(glance, image_id), data)

    target = tmp_path / 'downloaded.img'
    run('image-download', '--file', str(target), image_id)
    assert target.read_bytes() == data

    listed = run('image-list', '--property-filter', f'suite={suite}',
                 '--sort-key', 'name', '--sort-dir', 'asc').stdout
    assert UUID_IN_TEXT.findall(listed) == [image_id]

    updated = parse_table(run(
        'image-update', '--name', 'cli-renamed', '--property', 'foo=bar',
        '--remove-property', 'os_distro', image_id).stdout)
    assert updated['name'] == 'cli-renamed'
    assert updated['foo'] == 'bar'
    assert 'os_distro' not in updated

    run('image-tag-update', image_id, 'cli-tag')
    listed = run('image-list', '--property-filter', f'suite={suite}',
                 '--tag', 'cli-tag').stdout
    assert UUID_IN_TEXT.findall(listed) == [image_id]
    assert raw_image(glance, image_id)['tags'] == ['cli-tag']

    members = run('member-create', image_id, member).stdout
    assert member in members and 'pending' in members
    assert accept_as_member(glance, image_id, member) == data
    members = run('member-list', '--image-id', image_id).stdout
    assert member in members and 'accepted' in members

    run('image-deactivate', image_id)
    assert raw_image(glance, image_id)['status'] == 'deactivated'
    run('image-reactivate', image_id)
    assert raw_image(glance, image_id)['status'] == 'active'

    run('image-tag-delete', image_id, 'cli-tag')
    run('image-delete', image_id)
    result = run('image-show', image_id, check=False)
    assert result.returncode != 0
    assert requests.get(f'{glance.url}/v2/images/{image_id}',
                        timeout=60).status_code == 404
    assert image_id not in helpers.stored_files(glance)


# ------------------------------------------------- python-glanceclient API


@pytest.mark.timeout(300)
def test_glanceclient_lifecycle(glance):
    from glanceclient import Client, exc

    client = Client('2', endpoint=glance.url, token='anything')
    suite = helpers.new_project()
    member = helpers.new_project()
    data = os.urandom(3 * 1024 * 1024 + 7)

    image = client.images.create(name='gc-image', disk_format='raw',
                                 container_format='bare', suite=suite,
                                 os_distro='cirros')
    assert image['status'] == 'queued'
    assert image['suite'] == suite
    client.images.upload(image['id'], io.BytesIO(data))
    shown = client.images.get(image['id'])
    assert shown['status'] == 'active'
    assert_hashes(shown, data)
    # glanceclient verifies os_hash_value while reading.
    assert b''.join(client.images.data(image['id'])) == data

    listed = list(client.images.list(filters={'suite': suite},
                                     sort_key='name', sort_dir='asc'))
    assert [i['id'] for i in listed] == [image['id']]
    listed = list(client.images.list(
        filters={'suite': suite, 'name': 'gc-image', 'status': 'active',
                 'visibility': 'shared', 'size_min': len(data)}))
    assert [i['id'] for i in listed] == [image['id']]
    assert list(client.images.list(filters={'suite': suite,
                                            'size_max': 1})) == []
    # Pagination as the client does it (page_size -> limit + next).
    for index in range(3):
        client.images.create(name=f'gc-page-{index}', suite=suite)
    paged = list(client.images.list(filters={'suite': suite}, page_size=2))
    assert len(paged) == 4
    assert len({i['id'] for i in paged}) == 4

    client.images.update(image['id'], name='gc-renamed', foo='bar',
                         remove_props=['os_distro'])
    shown = client.images.get(image['id'])
    assert shown['name'] == 'gc-renamed'
    assert shown['foo'] == 'bar'
    assert 'os_distro' not in shown

    client.image_tags.update(image['id'], 'gc-tag')
    listed = list(client.images.list(filters={'suite': suite,
                                              'tag': ['gc-tag']}))
    assert [i['id'] for i in listed] == [image['id']]

    created = client.image_members.create(image['id'], member)
    assert created['status'] == 'pending'
    assert accept_as_member(glance, image['id'], member) == data
    members = list(client.image_members.list(image['id']))
    assert [(m['member_id'], m['status']) for m in members] == [
        (member, 'accepted')]

    client.images.deactivate(image['id'])
    assert client.images.get(image['id'])['status'] == 'deactivated'
    client.images.reactivate(image['id'])
    assert client.images.get(image['id'])['status'] == 'active'

    client.image_tags.delete(image['id'], 'gc-tag')
    assert client.images.get(image['id'])['tags'] == []
    client.images.delete(image['id'])
    with pytest.raises(exc.HTTPNotFound):
        client.images.get(image['id'])
    assert image['id'] not in helpers.stored_files(glance)


# ------------------------------------------------------------ openstacksdk


@pytest.mark.timeout(300)
def test_openstacksdk_lifecycle(glance):
    """sdk with auth_type='none' and the image endpoint overridden to the
    server's root URL (it runs version discovery there: 300 + versions;
    an override ending in /v2 fails discovery against upstream too)."""
    import openstack
    from openstack import exceptions

    conn = openstack.connection.Connection(
        auth_type='none', image_endpoint_override=glance.url)
    suite = helpers.new_project()
    member = helpers.new_project()
    data = os.urandom(2 * 1024 * 1024 + 99)

    image = conn.image.create_image(
        name=f'sdk-{suite}', disk_format='raw', container_format='bare',
        data=data, suite=suite, wait=True)
    image = conn.image.get_image(image.id)
    assert image.status == 'active'
    assert image.size == len(data)
    assert image.checksum == helpers.md5(data)
    assert image.hash_algo == 'sha512'
    assert image.hash_value == helpers.sha512(data)
    assert image.properties['suite'] == suite
    assert_hashes(raw_image(glance, image.id), data)

    assert conn.image.download_image(image).content == data

    listed = list(conn.image.images(name=f'sdk-{suite}', sort_key='name',
                                    sort_dir='asc', visibility='shared',
                                    status='active'))
    assert [i.id for i in listed] == [image.id]
    assert list(conn.image.images(name=f'sdk-{suite}',
                                  status='queued')) == []

    image = conn.image.update_image(image, name=f'sdk-renamed-{suite}',
                                    foo='bar')
    shown = raw_image(glance, image.id)
    assert shown['name'] == f'sdk-renamed-{suite}'
    assert shown['foo'] == 'bar'

    conn.image.add_tag(image, 'sdk-tag')
    listed = list(conn.image.images(tag='sdk-tag',
                                    name=f'sdk-renamed-{suite}'))
    assert [i.id for i in listed] == [image.id]

    created = conn.image.add_member(image, member_id=member)
    assert created.status == 'pending'
    assert accept_as_member(glance, image.id, member) == data
    members = list(conn.image.members(image))
    assert [(m.member_id, m.status) for m in members] == [
        (member, 'accepted')]

    conn.image.deactivate_image(image)
    assert conn.image.get_image(image.id).status == 'deactivated'
    conn.image.reactivate_image(image)
    assert conn.image.get_image(image.id).status == 'active'

    conn.image.remove_tag(image, 'sdk-tag')
    assert conn.image.get_image(image.id).tags == []
    conn.image.delete_image(image)
    with pytest.raises(exceptions.NotFoundException):
        conn.image.get_image(image.id)
    assert image.id not in helpers.stored_files(glance)
