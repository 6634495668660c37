"""The RBD store on a real Ceph cluster (``micro-ceph.sh``), through the
real glance-api: bytes in and out of the ``images`` pool, stores detail
with the cluster's fsid, images whose snapshot has clones (409, or
pending_delete until the scrubber can delete them), and locations added
the way Cinder adds them (POST location API and JSON-patch).
"""

import contextlib
import hashlib
import os
import sqlite3
import time
import uuid

import pytest
import requests

from tests.functional.conftest import GlanceServer
from tests.functional.conftest import run_command
from tests.functional.helpers import OCTET
from tests.functional.helpers import PATCH_V21
from tests.functional.helpers import identity
from tests.functional.helpers import new_project

try:
    import rados
    import rbd
except ImportError:   # the ceph fixture skips (fails in CI) and says why
    rados = rbd = None

DATA = os.urandom(3 * 2 ** 20 + 12345)   # more than one 1 MiB chunk
SERVICE = identity('service-project', roles='service,member,reader')
TIMEOUT = 60


def _rbd_options(ceph, store_group):
    return {'rbd_store_ceph_conf': ceph.conf, 'rbd_store_user': 'admin',
            'rbd_store_pool': 'images', 'rbd_store_chunk_size': 1,
            **store_group}


def multi_store_options(ceph, base_dir, **default):
    return {
        'DEFAULT': {'enabled_backends': 'ceph:rbd,file1:file', **default},
        'glance_store': {'default_backend': 'ceph'},
        'ceph': _rbd_options(ceph, {}),
        'file1': {'filesystem_store_datadir': os.path.join(base_dir, 'f1')},
    }


@pytest.fixture(scope='module')
def cluster(ceph):
    """The session's cluster, with an open connection for the checks."""
    with rados.Rados(conffile=ceph.conf) as conn:
        ceph.conn = conn
        yield ceph


@pytest.fixture(scope='module')
def server(cluster, tmp_path_factory):
    base_dir = str(tmp_path_factory.mktemp('rbd'))
    options = multi_store_options(cluster, base_dir,
                                  show_image_direct_url=True,
                                  show_multiple_locations=True)
    server = GlanceServer(base_dir, options).start()
    yield server
    server.stop()


@contextlib.contextmanager
def pool(cluster, name):
    ioctx = cluster.conn.open_ioctx(name)
    try:
        yield ioctx
    finally:
        ioctx.close()


def rbd_images(cluster, pool_name='images'):
    with pool(cluster, pool_name) as ioctx:
        return set(rbd.RBD().list(ioctx))


def snapshots(cluster, name):
    with pool(cluster, 'images') as ioctx, rbd.Image(ioctx, name) as image:
        return {(s['name'], image.is_protected_snap(s['name']))
                for s in image.list_snaps()}


@contextlib.contextmanager
def clone_of(cluster, image_id):
    """A volume cloned from the image's ``snap``, as Cinder makes one."""
    name = 'volume-%s' % uuid.uuid4()
    with pool(cluster, 'images') as parent, pool(cluster, 'volumes') as child:
        rbd.RBD().clone(parent, image_id, 'snap', child, name,
                        features=rbd.RBD_FEATURE_LAYERING)
        try:
            yield name
        finally:
            rbd.RBD().remove(child, name)


def make_rbd_image(cluster, data):
    """An RBD image with a protected ``snap`` in the images pool, made
    outside glance (as Cinder's clone would be); returns its name."""
    name = str(uuid.uuid4())
    with pool(cluster, 'images') as ioctx:
        rbd.RBD().create(ioctx, name, len(data),
                         features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(ioctx, name) as image:
            image.write(data, 0)
            image.create_snap('snap')
            image.protect_snap('snap')
    return name


def rbd_url(cluster, name):
    return 'rbd://%s/images/%s/snap' % (cluster.fsid, name)


def create(server, headers=None, **fields):
    body = dict(disk_format='raw', container_format='bare', **fields)
    response = requests.post(server.url + '/v2/images', json=body,
                             headers=headers)
    assert response.status_code == 201, response.text
    return response.json()['id']


def upload(server, image_id, data=DATA, store=None):
    headers = {'Content-Type': OCTET}
    if store:
        headers['X-Image-Meta-Store'] = store
    response = requests.put('%s/v2/images/%s/file' % (server.url, image_id),
                            data=data, headers=headers)
    assert response.status_code == 204, response.text


def show(server, image_id, headers=None):
    return requests.get('%s/v2/images/%s' % (server.url, image_id),
                        headers=headers)


def download(server, image_id):
    return requests.get('%s/v2/images/%s/file' % (server.url, image_id))


def wait_for_status(server, image_id, wanted, headers=None):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        image = show(server, image_id, headers).json()
        if image['status'] == wanted and (wanted != 'active'
                                          or image['checksum']):
            return image
        time.sleep(0.2)
    raise AssertionError('image %s stayed %s' % (image_id, image['status']))


def db_rows(server, query, *params):
    path = server.database_url.removeprefix('sqlite:///')
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(query, params).fetchall()


def test_upload_download_delete_through_the_images_pool(server, cluster):
    image_id = create(server)
    upload(server, image_id)
    image = show(server, image_id).json()
    assert image['direct_url'] == rbd_url(cluster, image_id)
    assert image['stores'] == 'ceph'
    assert image['size'] == len(DATA)
    assert image['checksum'] == hashlib.md5(DATA).hexdigest()
    assert image_id in rbd_images(cluster)
    assert snapshots(cluster, image_id) == {('snap', True)}

    assert download(server, image_id).content == DATA
    ranged = requests.get('%s/v2/images/%s/file' % (server.url, image_id),
                          headers={'Range': 'bytes=1048570-1048585'})
    assert (ranged.status_code, ranged.content) == (206,
                                                    DATA[1048570:1048586])

    response = requests.delete('%s/v2/images/%s' % (server.url, image_id))
    assert response.status_code == 204
    assert image_id not in rbd_images(cluster)


def test_upload_to_each_store(server, cluster):
    for store in ('ceph', 'file1'):
        image_id = create(server)
        upload(server, image_id, store=store)
        assert show(server, image_id).json()['stores'] == store
        assert download(server, image_id).content == DATA
        assert (image_id in rbd_images(cluster)) == (store == 'ceph')


def test_stores_detail_shows_pool_and_fsid(server, cluster):
    response = requests.get(server.url + '/v2/info/stores/detail',
                            headers=SERVICE)
    assert response.status_code == 200, response.text
    ceph_store = response.json()['stores'][0]
    assert ceph_store == {
        'id': 'ceph', 'default': 'true', 'type': 'rbd', 'weight': 0,
        'properties': {'pool': 'images', 'chunk_size': 2 ** 20,
                       'thin_provisioning': False, 'fsid': cluster.fsid}}
    member = requests.get(server.url + '/v2/info/stores/detail',
                          headers=identity(new_project()))
    assert member.status_code == 403


def test_image_with_cloned_snapshot_is_not_deleted(server, cluster):
    image_id = create(server)
    upload(server, image_id)
    with clone_of(cluster, image_id):
        response = requests.delete('%s/v2/images/%s' % (server.url,
                                                        image_id))
        assert response.status_code == 409, response.text
        assert show(server, image_id).json()['status'] == 'active'
        assert snapshots(cluster, image_id) == {('snap', True)}
        assert download(server, image_id).content == DATA
        assert db_rows(server, 'SELECT status FROM image_locations '
                               'WHERE image_id = ?', image_id) == [('active',)]
    response = requests.delete('%s/v2/images/%s' % (server.url, image_id))
    assert response.status_code == 204
    assert image_id not in rbd_images(cluster)


def test_delayed_delete_waits_for_clones_then_scrubs(cluster,
                                                     start_glance,
                                                     tmp_path):
    server = start_glance(multi_store_options(
        cluster, str(tmp_path), delayed_delete=True, scrub_time=0))
    image_id = create(server)
    upload(server, image_id)

    def scrub():
        result = run_command('scrubber', server.conf_file)
        assert result.returncode == 0, result.stderr

    def statuses():
        return (db_rows(server, 'SELECT status FROM images WHERE id = ?',
                        image_id),
                db_rows(server, 'SELECT status FROM image_locations '
                                'WHERE image_id = ?', image_id))

    with clone_of(cluster, image_id):
        response = requests.delete('%s/v2/images/%s' % (server.url,
                                                        image_id))
        assert response.status_code == 204
        for _ in range(2):
            scrub()
            assert statuses() == ([('pending_delete',)],
                                  [('pending_delete',)])
            # Never half deleted: the image keeps its protected snapshot.
            assert snapshots(cluster, image_id) == {('snap', True)}
    scrub()
    assert statuses() == ([('deleted',)], [('deleted',)])
    assert image_id not in rbd_images(cluster)


def test_location_api_registers_an_rbd_image(server, cluster):
    data = os.urandom(2 ** 20)
    name = make_rbd_image(cluster, data)
    image_id = create(server, headers=SERVICE)
    response = requests.post(
        '%s/v2/images/%s/locations' % (server.url, image_id),
        json={'url': rbd_url(cluster, name), 'validation_data': {}},
        headers=SERVICE)
    assert response.status_code == 202, response.text
    image = wait_for_status(server, image_id, 'active', SERVICE)
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()
    locations = requests.get(
        '%s/v2/images/%s/locations' % (server.url, image_id),
        headers=SERVICE)
    assert locations.json() == [{'url': rbd_url(cluster, name),
                                 'metadata': {'store': 'ceph'}}]
    assert download(server, image_id).content == data


@pytest.mark.parametrize('url', [
    'rbd://just-a-name', 'rbd://{fsid}/images/only-three', 'rbd://',
    'rbd://another-fsid/images/x/snap'])
def test_location_api_refuses_malformed_urls_at_once(server, cluster, url):
    image_id = create(server, headers=SERVICE)
    response = requests.post(
        '%s/v2/images/%s/locations' % (server.url, image_id),
        json={'url': url.format(fsid=cluster.fsid)}, headers=SERVICE)
    assert response.status_code == 400, response.text
    assert show(server, image_id, SERVICE).json()['status'] == 'queued'


def test_location_api_task_fails_for_a_missing_rbd_image(server, cluster):
    image_id = create(server, headers=SERVICE)
    response = requests.post(
        '%s/v2/images/%s/locations' % (server.url, image_id),
        json={'url': rbd_url(cluster, 'no-such-image')}, headers=SERVICE)
    assert response.status_code == 202
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        tasks = requests.get('%s/v2/images/%s/tasks' % (server.url,
                                                        image_id),
                             headers=SERVICE).json()['tasks']
        if tasks and tasks[0]['status'] == 'failure':
            break
        time.sleep(0.2)
    assert 'does not exist' in tasks[0]['message']
    image = show(server, image_id, SERVICE).json()
    assert (image['status'], image['size']) == ('queued', None)


def test_location_api_rbd_url_needs_the_service_role(server, cluster):
    project = new_project()
    member = identity(project)
    image_id = create(server, headers=member)
    response = requests.post(
        '%s/v2/images/%s/locations' % (server.url, image_id),
        json={'url': rbd_url(cluster, make_rbd_image(cluster, b'x' * 512))},
        headers=member)
    assert response.status_code == 403


def test_json_patch_adds_an_rbd_location(server, cluster):
    data = os.urandom(5000)
    name = make_rbd_image(cluster, data)
    image_id = create(server)

    def add(url):
        return requests.patch(
            '%s/v2/images/%s' % (server.url, image_id),
            headers={'Content-Type': PATCH_V21},
            json=[{'op': 'add', 'path': '/locations/-',
                   'value': {'url': url, 'metadata': {}}}])

    assert add('rbd://%s/images/missing/snap' % cluster.fsid
               ).status_code == 400
    assert add('rbd://malformed').status_code == 400
    response = add(rbd_url(cluster, name))
    assert response.status_code == 200, response.text
    image = response.json()
    assert (image['status'], image['size']) == ('active', len(data))
    assert image['locations'] == [{'url': rbd_url(cluster, name),
                                   'metadata': {'store': 'ceph'}}]
    assert download(server, image_id).content == data


def test_single_store_rbd(cluster, start_glance):
    server = start_glance({'glance_store': _rbd_options(cluster, {
        'stores': 'rbd', 'default_store': 'rbd'})})
    image_id = create(server)
    upload(server, image_id)
    assert image_id in rbd_images(cluster)
    assert download(server, image_id).content == DATA
    assert 'stores' not in show(server, image_id).json()
    assert requests.get(server.url + '/v2/info/stores').status_code == 404
    response = requests.delete('%s/v2/images/%s' % (server.url, image_id))
    assert response.status_code == 204
    assert image_id not in rbd_images(cluster)
