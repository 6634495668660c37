"""Image data over raw HTTP: upload, download, ranges, checksums, uploads
cut off half way, size quotas, deactivate/reactivate (reference
glance-compat.md §3.7, §3.11-3.14).

Bytes are compared with what the client sent, on the wire and in the
filesystem store (``server.images_dir``); hashes with hashlib's.
"""

import hashlib
import os
import time

import pytest

from tests.functional import helpers
from tests.functional.helpers import error_text
from tests.functional.helpers import OCTET, Api

server = helpers.server
quota_glance = helpers.shared_server('quota_glance', helpers.QUOTA_OPTIONS)
config_glance = helpers.shared_server('config_glance',
                                      helpers.CONFIG_OPTIONS)


def queued_image(api, **body):
    body.setdefault('disk_format', 'raw')
    body.setdefault('container_format', 'bare')
    return api.create(**body)


def stored_path(server, image_id):
    """Path of the image's active location in the filesystem store."""
    rows = helpers.db_rows(
        server, "SELECT value FROM image_locations WHERE image_id = ? "
        "AND deleted = 0 AND status = 'active'", image_id)
    assert len(rows) == 1, rows
    assert rows[0]['value'].startswith('file://'), rows
    return rows[0]['value'][len('file://'):]


def files_of(server, image_id):
    """Files of the store whose name mentions the image id."""
    return [name for name in helpers.stored_files(server)
            if image_id in name]


def no_files_left(server, image_id, timeout=10):
    """Whether the store has (soon) no file of the image."""
    return wait_for(lambda: files_of(server, image_id) == [], timeout)


def wait_for(predicate, timeout=30, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# ------------------------------------------------------- upload/download


def test_upload_then_download_same_bytes_and_hashes(server, owner):
    """PUT file 204, image active with size/md5/sha512 of the data; the
    store holds the bytes; GET file returns them with Content-MD5."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = queued_image(owner)
    resp = owner.upload(image['id'], data)
    assert resp.status_code == 204, error_text(resp)
    assert resp.content == b''

    shown = owner.show(image['id'])
    assert shown['status'] == 'active'
    assert shown['size'] == len(data)
    assert shown['checksum'] == hashlib.md5(data).hexdigest()
    assert shown['os_hash_algo'] == 'sha512'
    assert shown['os_hash_value'] == hashlib.sha512(data).hexdigest()

    with open(stored_path(server, image['id']), 'rb') as f:
        assert f.read() == data

    resp = owner.download(image['id'])
    assert resp.status_code == 200, error_text(resp)
    assert resp.content == data
    assert resp.headers['Content-Type'] == OCTET
    assert int(resp.headers['Content-Length']) == len(data)
    assert resp.headers['Content-MD5'] == shown['checksum']

    row = helpers.image_row(server, image['id'])
    assert row['status'] == 'active'
    assert row['size'] == len(data)
    assert row['checksum'] == shown['checksum']
    assert row['os_hash_value'] == shown['os_hash_value']


def test_chunked_upload(server, owner):
    """An upload without Content-Length (chunked, as glanceclient sends)."""
    pieces = [os.urandom(65536) for _ in range(20)] + [b'tail']
    data = b''.join(pieces)
    image = queued_image(owner)
    resp = owner.upload(image['id'], iter(pieces))
    assert resp.status_code == 204, error_text(resp)
    shown = owner.show(image['id'])
    assert shown['size'] == len(data)
    assert shown['checksum'] == hashlib.md5(data).hexdigest()
    assert shown['os_hash_value'] == hashlib.sha512(data).hexdigest()
    assert owner.download(image['id']).content == data


def test_empty_upload_makes_an_active_empty_image(owner):
    image = queued_image(owner)
    resp = owner.upload(image['id'], b'')
    assert resp.status_code == 204, error_text(resp)
    shown = owner.show(image['id'])
    assert shown['status'] == 'active'
    assert shown['size'] == 0
    assert shown['checksum'] == hashlib.md5(b'').hexdigest()
    resp = owner.download(image['id'])
    assert resp.status_code == 200
    assert resp.content == b''


def test_hashing_algorithm_option(config_glance):
    """[DEFAULT] hashing_algorithm picks os_hash_algo (sha256 here)."""
    api = Api(config_glance, helpers.new_project())
    data = b'hash me' * 1000
    image = api.create_active(data=data)
    assert image['os_hash_algo'] == 'sha256'
    assert image['os_hash_value'] == hashlib.sha256(data).hexdigest()
    assert image['checksum'] == hashlib.md5(data).hexdigest()


def test_download_without_data_is_204(owner):
    image = queued_image(owner)
    resp = owner.download(image['id'])
    assert resp.status_code == 204, error_text(resp)
    assert resp.content == b''


@pytest.mark.parametrize('range_header, content_range, body', [
    ('bytes=2-4', 'bytes 2-4/10', b'234'),
    ('bytes=0-0', 'bytes 0-0/10', b'0'),
    ('bytes=0-9', 'bytes 0-9/10', b'0123456789'),
    ('bytes=5-', 'bytes 5-9/10', b'56789'),
    ('bytes=-3', 'bytes 7-9/10', b'789'),
    ('bytes=9-20', 'bytes 9-9/10', b'9'),        # end clipped to the size
    ('bytes=-20', 'bytes 0-9/10', b'0123456789'),
])
def test_ranged_download_is_206(owner, range_header, content_range, body):
    image = owner.create_active(data=b'0123456789')
    resp = owner.download(image['id'], headers={'Range': range_header})
    assert resp.status_code == 206, error_text(resp)
    assert resp.headers['Content-Range'] == content_range
    assert resp.content == body
    assert int(resp.headers['Content-Length']) == len(body)


def test_request_content_range_header_still_accepted(owner):
    """Old clients send Content-Range on a GET; upstream honours it."""
    image = owner.create_active(data=b'0123456789')
    resp = owner.download(image['id'],
                          headers={'Content-Range': 'bytes 2-4/10'})
    assert resp.status_code == 206, error_text(resp)
    assert resp.content == b'234'


@pytest.mark.parametrize('range_header', [
    'bytes=10-', 'bytes=20-40', 'bytes=4-2', 'bytes=a-b', 'chars=1-2',
    'junk'])
def test_unsatisfiable_range_is_416(owner, range_header):
    image = owner.create_active(data=b'0123456789')
    resp = owner.download(image['id'], headers={'Range': range_header})
    assert resp.status_code == 416, error_text(resp)


def test_multiple_ranges_are_400(owner):
    image = owner.create_active(data=b'0123456789')
    resp = owner.download(image['id'], headers={'Range': 'bytes=0-1,3-4'})
    assert resp.status_code == 400, error_text(resp)


def test_upload_to_active_image_is_409(server, owner):
    image = owner.create_active(data=b'first')
    resp = owner.upload(image['id'], b'second')
    assert resp.status_code == 409, error_text(resp)
    assert owner.download(image['id']).content == b'first'
    with open(stored_path(server, image['id']), 'rb') as f:
        assert f.read() == b'first'


@pytest.mark.parametrize('content_type', [
    'application/json', 'text/plain', 'application/x-www-form-urlencoded',
    None])
def test_upload_with_wrong_content_type_is_415(server, owner, content_type):
    image = queued_image(owner)
    headers = {'Content-Type': content_type} if content_type else {}
    resp = owner.put(f"/v2/images/{image['id']}/file", data=b'data',
                     headers=headers)
    assert resp.status_code == 415, error_text(resp)
    assert owner.show(image['id'])['status'] == 'queued'
    assert files_of(server, image['id']) == []


def test_upload_not_matching_disk_format_is_415(owner):
    """[image_format] require_image_format_match (default true): random
    bytes declared qcow2 are refused and the image stays queued."""
    image = queued_image(owner, disk_format='qcow2')
    resp = owner.upload(image['id'], os.urandom(100000))
    assert resp.status_code == 415, error_text(resp)
    assert owner.show(image['id'])['status'] == 'queued'


def test_upload_without_formats_is_400(server, owner):
    image = owner.create(name='no formats')
    resp = owner.upload(image['id'], b'data')
    assert resp.status_code == 400, error_text(resp)
    assert owner.show(image['id'])['status'] == 'queued'
    assert files_of(server, image['id']) == []


def test_upload_and_download_of_absent_images_are_404(owner):
    image = queued_image(owner)
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    for image_id in (image['id'], '00000000-0000-0000-0000-000000000000',
                     'not-a-uuid'):
        assert owner.upload(image_id, b'x').status_code == 404, image_id
        assert owner.download(image_id).status_code == 404, image_id


def test_data_access_of_other_projects(server, owner, other):
    """Members may download but not upload; strangers get 404; a reader
    may do neither."""
    shared = owner.create_active(data=b'shared bytes')
    resp = owner.post(f"/v2/images/{shared['id']}/members",
                      json={'member': other.project})
    assert resp.status_code == 200, error_text(resp)
    assert other.download(shared['id']).content == b'shared bytes'
    stranger = Api(server, helpers.new_project())
    assert stranger.download(shared['id']).status_code == 404

    queued = queued_image(owner)
    owner.post(f"/v2/images/{queued['id']}/members",
               json={'member': other.project})
    assert other.upload(queued['id'], b'x').status_code == 403
    assert stranger.upload(queued['id'], b'x').status_code == 404
    reader = Api(server, owner.project, roles='reader')
    assert reader.upload(queued['id'], b'x').status_code == 403
    assert reader.download(shared['id']).status_code == 403
    assert owner.show(queued['id'])['status'] == 'queued'


def test_public_image_downloadable_by_all(admin, other):
    image = admin.create_active(data=b'public bytes', visibility='public')
    resp = other.download(image['id'])
    assert resp.status_code == 200, error_text(resp)
    assert resp.content == b'public bytes'


# ---------------------------------------------------- interrupted upload


def _send_half_upload(server, image_id, project, chunked):
    """Start an upload of 4 MiB, send half, and return the open socket."""
    import socket

    total = 4 * 1024 * 1024
    half = os.urandom(total // 2)
    headers = [
        f'PUT /v2/images/{image_id}/file HTTP/1.1',
        f'Host: 127.0.0.1:{server.port}',
        f'Content-Type: {OCTET}',
    ]
    headers += [f'{key}: {value}'
                for key, value in helpers.identity(project).items()]
    if getattr(server, 'oracle', False):
        headers.append('X-Identity-Status: Confirmed')
    if chunked:
        headers.append('Transfer-Encoding: chunked')
        body = b'%x\r\n%s\r\n' % (len(half), half)
    else:
        headers.append(f'Content-Length: {total}')
        body = half
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=30)
    sock.sendall(('\r\n'.join(headers) + '\r\n\r\n').encode() + body)
    return sock


@pytest.mark.timeout(120)
@pytest.mark.parametrize('chunked', [False, True],
                         ids=['content-length', 'chunked'])
def test_upload_cut_off_half_way_goes_back_to_queued(server, owner, chunked):
    """The client dies mid-upload: the image is ``saving`` meanwhile,
    then back to ``queued`` (never ``killed``), with no file left in the
    store, and a new upload works."""
    image = queued_image(owner)
    sock = _send_half_upload(server, image['id'], owner.project, chunked)
    try:
        # Data is streamed to the store as it arrives.
        saving = wait_for(
            lambda: owner.show(image['id'])['status'] == 'saving', 20)
    finally:
        sock.close()
    assert saving, 'image never became saving while its data arrived'

    queued = wait_for(
        lambda: owner.show(image['id'])['status'] == 'queued', 60)
    assert queued, owner.show(image['id'])
    assert wait_for(lambda: files_of(server, image['id']) == [], 30), (
        files_of(server, image['id']))
    shown = owner.show(image['id'])
    assert shown['size'] is None
    assert shown['checksum'] is None
    rows = helpers.db_rows(
        server, 'SELECT status FROM image_locations WHERE image_id = ? '
        'AND deleted = 0', image['id'])
    assert rows == []
    assert helpers.image_row(server, image['id'])['status'] == 'queued'

    resp = owner.upload(image['id'], b'complete data')
    assert resp.status_code == 204, error_text(resp)
    assert owner.download(image['id']).content == b'complete data'


# --------------------------------------------------------------- quotas


def test_image_size_cap(quota_glance):
    """image_size_cap=4096: a larger upload (declared or chunked) is 413,
    the image stays queued and nothing is left in the store."""
    api = Api(quota_glance, helpers.new_project())
    for data in (b'x' * 5000, iter([b'x' * 3000, b'x' * 3000])):
        image = queued_image(api)
        resp = api.upload(image['id'], data)
        assert resp.status_code == 413, error_text(resp)
        assert api.show(image['id'])['status'] == 'queued'
        assert no_files_left(quota_glance, image['id'])
    image = queued_image(api)
    assert api.upload(image['id'], b'x' * 4096).status_code == 204
    assert api.show(image['id'])['size'] == 4096


def test_user_storage_quota(quota_glance):
    """user_storage_quota=6KB per owner: an upload that would take the
    owner's total past 6144 bytes is 413; another owner is unaffected."""
    api = Api(quota_glance, helpers.new_project())
    first = api.create_active(data=b'a' * 4000)
    assert first['size'] == 4000
    second = queued_image(api)
    for data in (b'b' * 3000, iter([b'b' * 1500, b'b' * 1500])):
        resp = api.upload(second['id'], data)
        assert resp.status_code == 413, error_text(resp)
        assert api.show(second['id'])['status'] == 'queued'
        assert no_files_left(quota_glance, second['id'])
    assert api.upload(second['id'], b'b' * 2000).status_code == 204
    # Deleting frees the space.
    assert api.delete(f"/v2/images/{first['id']}").status_code == 204
    assert api.create_active(data=b'c' * 4000)['size'] == 4000
    # Another project has its own quota.
    other = Api(quota_glance, helpers.new_project())
    assert other.create_active(data=b'd' * 4000)['size'] == 4000


# --------------------------------------------------- deactivate/reactivate


def action(api, image_id, name):
    return api.post(f'/v2/images/{image_id}/actions/{name}')


def test_deactivate_and_reactivate(admin, owner):
    image = owner.create_active(data=b'deactivate me')
    resp = action(owner, image['id'], 'deactivate')
    assert resp.status_code == 204, error_text(resp)
    assert resp.content == b''
    assert owner.show(image['id'])['status'] == 'deactivated'
    # Idempotent.
    assert action(owner, image['id'], 'deactivate').status_code == 204
    # Non-admins may not download it; admins may.
    resp = owner.download(image['id'])
    assert resp.status_code == 403, error_text(resp)
    assert admin.download(image['id']).content == b'deactivate me'
    # Still listed, with its status.
    listed = owner.list(owner=owner.project, status='deactivated')['images']
    assert [i['id'] for i in listed] == [image['id']]
    # No new data for it.
    assert owner.upload(image['id'], b'x').status_code == 409

    resp = action(owner, image['id'], 'reactivate')
    assert resp.status_code == 204, error_text(resp)
    assert owner.show(image['id'])['status'] == 'active'
    assert action(owner, image['id'], 'reactivate').status_code == 204
    assert owner.download(image['id']).content == b'deactivate me'


def test_deactivate_or_reactivate_queued_image_is_403(owner):
    image = queued_image(owner)
    for name in ('deactivate', 'reactivate'):
        resp = action(owner, image['id'], name)
        assert resp.status_code == 403, (name, error_text(resp))
    assert owner.show(image['id'])['status'] == 'queued'


def test_deactivate_by_others_and_of_absent_images(server, owner, other):
    image = owner.create_active(data=b'x')
    owner.post(f"/v2/images/{image['id']}/members",
               json={'member': other.project})
    assert action(other, image['id'], 'deactivate').status_code == 403
    stranger = Api(server, helpers.new_project())
    assert action(stranger, image['id'], 'deactivate').status_code == 404
    assert owner.show(image['id'])['status'] == 'active'
    for image_id in ('00000000-0000-0000-0000-000000000000', 'not-a-uuid'):
        assert action(owner, image_id, 'deactivate').status_code == 404
        assert action(owner, image_id, 'reactivate').status_code == 404
    assert action(owner, image['id'], 'explode').status_code == 404


def test_delete_deactivated_image(owner):
    image = owner.create_active(data=b'x')
    assert action(owner, image['id'], 'deactivate').status_code == 204
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    assert owner.get(f"/v2/images/{image['id']}").status_code == 404
