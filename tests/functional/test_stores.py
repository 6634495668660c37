"""Multi-store over HTTP, on filesystem stores: ``/v2/info/stores`` and its
detail, uploads to a chosen store, the ``stores`` field and
``OpenStack-image-store-ids`` header, and deleting an image's data from
one store (``DELETE /v2/stores/{store}/{image}``). The RBD store on a real
Ceph cluster is in ``test_rbd_store``.
"""

import http.server
import os
import threading

import pytest
import requests

from tests.functional.conftest import GlanceServer
from tests.functional.helpers import OCTET
from tests.functional.helpers import PATCH_V21
from tests.functional.helpers import identity
from tests.functional.helpers import new_project

DATA = b'multi-store data ' * 4096
SERVICE = identity('service-project', roles='service,member,reader')


def _options(base_dir):
    return {
        'DEFAULT': {'enabled_backends': 'fast:file,slow:file,web:http',
                    'show_multiple_locations': True},
        'glance_store': {'default_backend': 'fast'},
        'fast': {'filesystem_store_datadir': os.path.join(base_dir, 'fast'),
                 'store_description': 'Fast disks', 'weight': 5},
        'slow': {'filesystem_store_datadir': os.path.join(base_dir, 'slow'),
                 'filesystem_store_chunk_size': 4096},
    }


@pytest.fixture(scope='module')
def multi(tmp_path_factory):
    base_dir = tmp_path_factory.mktemp('multi')
    server = GlanceServer(base_dir, _options(str(base_dir))).start()
    server.store_dir = lambda store: os.path.join(str(base_dir), store)
    yield server
    server.stop()


@pytest.fixture(scope='module')
def web():
    """An http server holding DATA at /data: the read-only ``web`` store."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.send_response(200)
            self.send_header('Content-Length', str(len(DATA)))
            self.end_headers()

        def do_GET(self):
            self.do_HEAD()
            self.wfile.write(DATA)

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d/data' % server.server_address[1]
    server.shutdown()


def _create(server, headers=None, **fields):
    body = dict(disk_format='raw', container_format='bare', **fields)
    response = requests.post(server.url + '/v2/images', json=body,
                             headers=headers)
    assert response.status_code == 201, response.text
    return response


def _upload(server, image_id, store=None, data=DATA):
    headers = {'Content-Type': OCTET}
    if store:
        headers['X-Image-Meta-Store'] = store
    return requests.put('%s/v2/images/%s/file' % (server.url, image_id),
                        data=data, headers=headers)


def _image(server, image_id):
    return requests.get('%s/v2/images/%s' % (server.url, image_id)).json()


def test_stores_list_names_default_and_read_only_stores(multi):
    response = requests.get(multi.url + '/v2/info/stores',
                            headers=identity(new_project()))
    assert response.status_code == 200
    assert response.json() == {'stores': [
        {'id': 'fast', 'description': 'Fast disks', 'default': 'true'},
        {'id': 'slow'},
        {'id': 'web', 'read-only': 'true'}]}


@pytest.mark.parametrize('caller', [{}, SERVICE], ids=['admin', 'service'])
def test_stores_detail_for_admin_and_service(multi, caller):
    response = requests.get(multi.url + '/v2/info/stores/detail',
                            headers=caller)
    assert response.status_code == 200, response.text
    fast, slow, web = response.json()['stores']
    assert fast == {
        'id': 'fast', 'description': 'Fast disks', 'default': 'true',
        'type': 'file', 'weight': 5, 'properties': {
            'data_dir': multi.store_dir('fast'), 'chunk_size': 65536,
            'thin_provisioning': False}}
    assert slow == {'id': 'slow', 'type': 'file', 'weight': 0,
                    'properties': {'data_dir': multi.store_dir('slow'),
                                   'chunk_size': 4096,
                                   'thin_provisioning': False}}
    assert web == {'id': 'web', 'read-only': 'true', 'type': 'http',
                   'weight': 0, 'properties': {}}


def test_stores_detail_forbidden_to_a_project_member(multi):
    response = requests.get(multi.url + '/v2/info/stores/detail',
                            headers=identity(new_project()))
    assert response.status_code == 403


def test_single_store_site_has_no_stores_info(glance):
    for path in ('/v2/info/stores', '/v2/info/stores/detail'):
        response = requests.get(glance.url + path)
        assert response.status_code == 404
        assert 'Multi backend is not supported' in response.text


def test_create_names_the_stores_in_a_header(multi, glance):
    assert _create(multi).headers['OpenStack-image-store-ids'] == (
        'fast,slow,web')
    assert 'OpenStack-image-store-ids' not in _create(glance).headers


@pytest.mark.parametrize('store', [None, 'fast', 'slow'])
def test_upload_goes_to_the_chosen_store(multi, store):
    image_id = _create(multi).json()['id']
    assert _upload(multi, image_id, store).status_code == 204
    chosen = store or 'fast'
    image = _image(multi, image_id)
    assert image['status'] == 'active'
    assert image['stores'] == chosen
    assert image['locations'][0]['metadata'] == {'store': chosen}
    with open(os.path.join(multi.store_dir(chosen), image_id), 'rb') as f:
        assert f.read() == DATA
    download = requests.get('%s/v2/images/%s/file' % (multi.url, image_id))
    assert download.content == DATA


def test_upload_to_an_unknown_store_is_refused(multi):
    image_id = _create(multi).json()['id']
    response = _upload(multi, image_id, 'nowhere')
    assert response.status_code == 400
    assert 'nowhere' in response.text
    assert _image(multi, image_id)['status'] == 'queued'
    assert 'stores' not in _image(multi, image_id)


def test_single_store_site_ignores_the_store_header(glance):
    image_id = _create(glance).json()['id']
    assert _upload(glance, image_id, 'fast').status_code == 204
    assert 'stores' not in _image(glance, image_id)


def _add_web_location(server, image_id, url):
    return requests.patch(
        '%s/v2/images/%s' % (server.url, image_id),
        headers={'Content-Type': PATCH_V21},
        json=[{'op': 'add', 'path': '/locations/-',
               'value': {'url': url, 'metadata': {}}}])


def test_added_location_records_the_store_its_url_belongs_to(multi, web):
    image_id = _create(multi).json()['id']
    response = _add_web_location(multi, image_id, web)
    assert response.status_code == 200, response.text
    image = response.json()
    assert image['status'] == 'active'
    assert image['locations'] == [{'url': web, 'metadata': {'store': 'web'}}]
    assert image['stores'] == 'web'


def test_delete_from_store_keeps_the_other_stores(multi, web):
    image_id = _create(multi).json()['id']
    assert _upload(multi, image_id, 'slow').status_code == 204
    assert _add_web_location(multi, image_id, web).status_code == 200
    assert _image(multi, image_id)['stores'] == 'slow,web'

    response = requests.delete('%s/v2/stores/slow/%s' % (multi.url,
                                                         image_id))
    assert response.status_code == 204, response.text
    image = _image(multi, image_id)
    assert (image['status'], image['stores']) == ('active', 'web')
    assert not os.path.exists(os.path.join(multi.store_dir('slow'),
                                           image_id))
    download = requests.get('%s/v2/images/%s/file' % (multi.url, image_id))
    assert download.content == DATA


@pytest.mark.parametrize('path, status', [
    ('/v2/stores/fast/{id}', 403),       # its only store
    ('/v2/stores/slow/{id}', 404),       # no data there
    ('/v2/stores/nowhere/{id}', 409),    # not a store of this site
])
def test_delete_from_store_refusals(multi, path, status):
    image_id = _create(multi).json()['id']
    assert _upload(multi, image_id, 'fast').status_code == 204
    response = requests.delete(multi.url + path.format(id=image_id))
    assert response.status_code == status, response.text
    image = _image(multi, image_id)
    assert (image['status'], image['stores']) == ('active', 'fast')
    assert os.path.exists(os.path.join(multi.store_dir('fast'), image_id))


def test_delete_from_store_needs_an_active_image_and_multi_store(
        multi, glance):
    image_id = _create(multi).json()['id']
    response = requests.delete('%s/v2/stores/fast/%s' % (multi.url,
                                                         image_id))
    assert response.status_code == 409
    response = requests.delete('%s/v2/stores/fast/%s' % (glance.url,
                                                         image_id))
    assert response.status_code == 404


def test_delete_from_store_is_admin_only(multi, web):
    project = new_project()
    owner = identity(project)
    image_id = _create(multi, headers=owner).json()['id']
    assert _upload(multi, image_id, 'slow').status_code == 204
    assert _add_web_location(multi, image_id, web).status_code == 200
    response = requests.delete('%s/v2/stores/slow/%s' % (multi.url,
                                                         image_id),
                               headers=owner)
    assert response.status_code == 403
    assert _image(multi, image_id)['stores'] == 'slow,web'


def test_replacing_location_metadata_keeps_its_store(multi, web):
    image_id = _create(multi).json()['id']
    assert _add_web_location(multi, image_id, web).status_code == 200
    response = requests.patch(
        '%s/v2/images/%s' % (multi.url, image_id),
        headers={'Content-Type': PATCH_V21},
        json=[{'op': 'replace', 'path': '/locations',
               'value': [{'url': web, 'metadata': {'note': 'mirror'}}]}])
    assert response.status_code == 200, response.text
    assert response.json()['locations'] == [
        {'url': web, 'metadata': {'note': 'mirror', 'store': 'web'}}]
