"""RBDCloneDriver end to end: the real cinder driver (in a child process)
uploads volumes to this project's real glance-api (multi-store, RBD store
``ceph`` by default and a file store ``file1``, no-auth pipeline with the
service role) on a real Ceph cluster; the spec's scenarios and every
order of deleting the volume, the image and volumes made from the image.
"""

import hashlib
import time
import uuid

import pytest
import requests

from tests.cinder import conftest as cinder_conftest
from tests.cinder.driver_host import _pattern
from tests.functional.conftest import GlanceServer

SIZE = 8 * 1024 * 1024
TIMEOUT = 60
HEADERS = {'X-Roles': 'admin,member,reader', 'X-Project-Id': 'cinder-tests',
           'X-User-Id': 'someone'}


@pytest.fixture(scope='module')
def server(ceph, tmp_path_factory):
    base_dir = str(tmp_path_factory.mktemp('cinder-e2e'))
    server = GlanceServer(
        base_dir, cinder_conftest.glance_options(ceph, base_dir)).start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def host(ceph, server):
    host = cinder_conftest.start_host(ceph, server.url)
    yield host
    host.close()


@pytest.fixture(autouse=True)
def glance_client(host):
    host.use_location_api_of_glance()


class Glance:
    def __init__(self, server):
        self.url = server.url + '/v2/images'

    def request(self, method, path='', **kwargs):
        return requests.request(method, self.url + path, headers=HEADERS,
                                timeout=TIMEOUT, **kwargs)

    def create(self, disk_format='raw'):
        response = self.request('POST', json={
            'name': 'from-volume', 'disk_format': disk_format,
            'container_format': 'bare'})
        assert response.status_code == 201, response.text
        return response.json()

    def show(self, image_id):
        return self.request('GET', '/' + image_id).json()

    def sha256(self, image_id):
        response = self.request('GET', '/%s/file' % image_id)
        assert response.status_code == 200, response.text
        return hashlib.sha256(response.content).hexdigest()

    def delete(self, image_id):
        return self.request('DELETE', '/' + image_id).status_code


@pytest.fixture(scope='module')
def glance(server):
    return Glance(server)


def upload(host, glance, volume_id):
    image = glance.create()
    host.upload(volume_id, {'id': image['id'], 'status': image['status'],
                            'disk_format': 'raw', 'container_format': 'bare',
                            'properties': {}})
    return image['id']


def assert_clone_of(pools, host, volume_id, image_id):
    assert pools.parent('images', image_id) == (
        'volumes', host.volume_name(volume_id), image_id + '.clone_snap')


def test_upload_by_clone_then_hashes_follow(host, glance, pools):
    seed = uuid.uuid4().hex
    volume_id, sha256 = host.new_volume(seed=seed)
    image_id = upload(host, glance, volume_id)
    assert_clone_of(pools, host, volume_id, image_id)
    image = glance.show(image_id)
    assert image['status'] == 'active'
    assert image['size'] == SIZE
    assert image['stores'] == 'ceph'
    assert glance.sha256(image_id) == sha256
    data = _pattern(SIZE, seed)
    deadline = time.monotonic() + TIMEOUT
    while not image['os_hash_value'] and time.monotonic() < deadline:
        time.sleep(0.1)
        image = glance.show(image_id)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()


def test_file_store_of_volume_type_uploads_by_copy(host, glance, pools):
    volume_id, sha256 = host.new_volume(store_id='file1')
    image_id = upload(host, glance, volume_id)
    image = glance.show(image_id)
    assert image['status'] == 'active' and image['stores'] == 'file1'
    assert glance.sha256(image_id) == sha256
    assert pools.leftovers(image_id) == []
    assert pools.snaps('volumes', host.volume_name(volume_id)) == []


def test_legacy_location_api_registers_with_hashes(host, glance, pools):
    host.use_legacy_location_api()
    seed = uuid.uuid4().hex
    volume_id, sha256 = host.new_volume(seed=seed)
    image_id = upload(host, glance, volume_id)
    assert_clone_of(pools, host, volume_id, image_id)
    image = glance.show(image_id)
    data = _pattern(SIZE, seed)
    assert image['status'] == 'active'
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()
    assert glance.sha256(image_id) == sha256


def test_upload_then_delete_volume(host, glance, pools):
    """The spec's first scenario, then the image goes too."""
    volume_id, sha256 = host.new_volume()
    image_id = upload(host, glance, volume_id)
    host.delete_volume(volume_id)
    assert glance.show(image_id)['status'] == 'active'
    assert glance.sha256(image_id) == sha256
    assert glance.delete(image_id) == 204
    host.collect_garbage()
    assert pools.leftovers(volume_id, image_id) == []


def test_delete_image_then_volume(host, glance, pools):
    volume_id, _sha256 = host.new_volume()
    image_id = upload(host, glance, volume_id)
    assert glance.delete(image_id) == 204
    host.delete_volume(volume_id)
    assert pools.leftovers(volume_id, image_id) == []


@pytest.mark.parametrize('source_first', [False, True],
                         ids=['source kept', 'source deleted first'])
def test_volume_from_image_then_delete_image(host, glance, pools,
                                             source_first):
    """The spec's second scenario: Glance refuses (409) to delete the image
    while a volume made from it exists; once all are deleted, in either
    order, nothing is left."""
    volume_id, sha256 = host.new_volume()
    image_id = upload(host, glance, volume_id)
    meta = {'id': image_id, 'disk_format': 'raw', 'container_format': 'bare',
            'status': 'active', 'properties': {}}
    child_id = host.volume_from_image(image_id, meta)
    assert child_id is not None
    child = host.volume_name(child_id)
    assert pools.parent('volumes', child) == ('images', image_id, 'snap')
    if source_first:
        host.delete_volume(volume_id)
    assert glance.delete(image_id) == 409
    assert glance.show(image_id)['status'] == 'active'
    assert pools.sha256('volumes', child, length=SIZE) == sha256
    host.delete_volume(child_id)
    assert glance.delete(image_id) == 204
    if not source_first:
        host.delete_volume(volume_id)
    host.collect_garbage()
    assert pools.leftovers(volume_id, image_id, child_id) == []
