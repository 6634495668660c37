"""Locations from URLs and the tasks that bring them in, over HTTP:

* the v2.17 location API (``POST /v2/images/{id}/locations``): request
  checks, the ``location_import`` task seen through
  ``GET /v2/images/{id}/tasks``, hashing and verifying in the background,
  cancelling when the image goes away;
* JSON-patch ``/locations`` with ``validation_data`` and metadata changes;
* the tasks API (``/v2/tasks``) and its ``import`` tasks;
* ``[import_filtering_opts]`` on the URLs glance fetches.

A small HTTP server in the test process plays the remote store.
"""

import hashlib
import http.server
import re
import threading
import time
import uuid

import pytest
import requests

from tests.functional.conftest import GlanceServer
from tests.functional.conftest import run_command
from tests.functional.conftest import write_conf

DATA = bytes(range(256)) * 4096            # 1 MiB, raw
PATCH = 'application/openstack-images-v2.1-json-patch'
TIMEOUT = 60
DB_TIMESTAMP = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$')


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/data``: DATA. ``/slow``: endless data, slowly; notes when the
    reader hangs up."""

    def log_message(self, *args):
        pass

    def _head(self, length):
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(length))
        self.end_headers()

    def do_HEAD(self):
        if self.path not in ('/data', '/slow'):
            self.send_error(404)
            return
        self._head(len(DATA) if self.path == '/data' else 100 * 2 ** 20)

    def do_GET(self):
        if self.path != '/slow':
            self.do_HEAD()
            if self.path == '/data':
                self.wfile.write(DATA)
            return
        self._head(100 * 2 ** 20)
        self.server.slow_started.set()
        try:
            for _ in range(600):
                self.wfile.write(b'x' * 65536)
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            self.server.slow_abandoned.set()


@pytest.fixture(scope='module')
def remote():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.daemon_threads = True
    server.slow_started = threading.Event()
    server.slow_abandoned = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = 'http://127.0.0.1:%d' % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def _options(remote, **default):
    return {'DEFAULT': dict({'show_multiple_locations': True}, **default),
            'glance_store': {'stores': 'file,http', 'default_store': 'file'},
            'import_filtering_opts': {
                'allowed_hosts': '[127.0.0.1]',
                'allowed_ports': '[%d]' % remote.server_address[1]}}


@pytest.fixture(scope='module')
def glance(remote, tmp_path_factory):
    server = GlanceServer(tmp_path_factory.mktemp('glance'),
                          _options(remote)).start()
    yield server
    server.stop()


class Client:
    """A member of a fresh project (or, with ``admin``, the no-auth
    admin of project ``default``)."""

    def __init__(self, server, admin=False):
        self.url = server.url
        self.project = 'default' if admin else 'p-%s' % uuid.uuid4().hex[:8]
        self.headers = {} if admin else {
            'X-Roles': 'member,reader', 'X-Project-Id': self.project,
            'X-User-Id': 'u-%s' % self.project}

    def __call__(self, method, path, **kwargs):
        headers = dict(self.headers, **kwargs.pop('headers', {}))
        return requests.request(method, self.url + path, headers=headers,
                                timeout=TIMEOUT, **kwargs)

    def image(self, **body):
        body = dict({'disk_format': 'raw', 'container_format': 'bare'},
                    **body)
        created = self('POST', '/v2/images', json=body)
        assert created.status_code == 201, created.text
        return created.json()['id']

    def show(self, image_id):
        return self('GET', '/v2/images/%s' % image_id).json()

    def add_location(self, image_id, url, **validation_data):
        return self('POST', '/v2/images/%s/locations' % image_id,
                    json={'url': url, 'validation_data': validation_data})

    def tasks_of(self, image_id):
        answer = self('GET', '/v2/images/%s/tasks' % image_id)
        assert answer.status_code == 200, answer.text
        return answer.json()['tasks']

    def wait_for_tasks(self, image_id, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.tasks_of(image_id)
            if all(t['status'] in ('success', 'failure') for t in tasks):
                return tasks
            time.sleep(0.2)
        raise AssertionError('tasks still running: %s' % tasks)

    def patch(self, image_id, operations):
        return self('PATCH', '/v2/images/%s' % image_id, json=operations,
                    headers={'Content-Type': PATCH})


def _sha(algo):
    return hashlib.new(algo, DATA).hexdigest()


# --- POST /v2/images/{id}/locations ----------------------------------------

@pytest.mark.parametrize('validation_data', [
    {'os_hash_algo': 'sha512', 'os_hash_value': 'ab' * 15},      # size
    {'os_hash_value': 'ab' * 64},                                # no algo
    {'os_hash_algo': 'sha512'},                                  # no value
    {'os_hash_algo': 'sha123', 'os_hash_value': 'ab' * 64},      # algo
    {'os_hash_algo': 'sha256', 'os_hash_value': 'zz' * 32},      # not hex
    {'os_hash_algo': 'md5', 'os_hash_value': 'ab' * 16, 'checksum': 'x'},
])
def test_add_location_refuses_bad_validation_data(glance, remote,
                                                  validation_data):
    client = Client(glance)
    image_id = client.image()
    answer = client.add_location(image_id, remote.url + '/data',
                                 **validation_data)
    assert answer.status_code == 400, answer.text
    assert client.show(image_id)['status'] == 'queued'
    assert client.tasks_of(image_id) == []


def test_add_location_with_validation_data_verifies_the_data(glance,
                                                             remote):
    client = Client(glance)
    image_id = client.image()
    answer = client.add_location(image_id, remote.url + '/data',
                                 os_hash_algo='sha256',
                                 os_hash_value=_sha('sha256'))
    assert answer.status_code == 202, answer.text
    assert answer.content == b''
    [task] = client.wait_for_tasks(image_id)
    assert task['status'] == 'success', task
    assert task['type'] == 'location_import'
    assert task['owner'] == client.project
    assert task['image_id'] == image_id
    assert task['result'] == {'image_id': image_id}
    assert task['input'] == {'image_id': image_id,
                             'loc_url': remote.url + '/data',
                             'validation_data': {
                                 'os_hash_algo': 'sha256',
                                 'os_hash_value': _sha('sha256')}}
    # The database's format, as upstream shows it here.
    assert task['deleted'] is False and task['deleted_at'] is None
    assert DB_TIMESTAMP.match(task['created_at']), task
    assert DB_TIMESTAMP.match(task['expires_at']), task
    image = client.show(image_id)
    assert (image['status'], image['size']) == ('active', len(DATA))
    assert image['checksum'] == hashlib.md5(DATA).hexdigest()
    assert (image['os_hash_algo'], image['os_hash_value']) == (
        'sha256', _sha('sha256'))
    assert image['locations'] == [{'url': remote.url + '/data',
                                   'metadata': {}}]


def test_data_that_does_not_match_fails_the_task(glance, remote):
    client = Client(glance)
    image_id = client.image()
    answer = client.add_location(image_id, remote.url + '/data',
                                 os_hash_algo='sha512',
                                 os_hash_value='beefdead' * 16)
    assert answer.status_code == 202, answer.text
    [task] = client.wait_for_tasks(image_id)
    assert task['status'] == 'failure'
    assert 'beefdead' in task['message'] and task['result'] is None
    image = client.show(image_id)
    assert image['status'] == 'queued'
    assert image['checksum'] is image['os_hash_algo'] is None
    assert image['os_hash_value'] is None
    # An http location's data is not glance's to delete: it stays.
    assert [loc['url'] for loc in image['locations']] == [
        remote.url + '/data']


def test_without_validation_data_the_hash_follows(glance, remote):
    client = Client(glance)
    image_id = client.image()
    assert client.add_location(image_id,
                               remote.url + '/data').status_code == 202
    again = client.add_location(image_id, remote.url + '/data')
    assert again.status_code == 409, again.text
    [task] = client.wait_for_tasks(image_id)
    assert task['status'] == 'success', task
    image = client.show(image_id)
    assert image['status'] == 'active'
    assert image['checksum'] == hashlib.md5(DATA).hexdigest()
    assert (image['os_hash_algo'], image['os_hash_value']) == (
        'sha512', _sha('sha512'))


def test_an_unreadable_location_fails_the_task_and_requeues(glance,
                                                            remote):
    client = Client(glance)
    image_id = client.image()
    answer = client.add_location(image_id, remote.url + '/missing')
    assert answer.status_code == 202
    [task] = client.wait_for_tasks(image_id)
    assert task['status'] == 'failure' and task['message']
    image = client.show(image_id)
    assert (image['status'], image['locations']) == ('queued', [])


def test_deleting_the_image_cancels_hashing(glance, remote):
    client = Client(glance)
    image_id = client.image()
    assert client.add_location(image_id,
                               remote.url + '/slow').status_code == 202
    deadline = time.monotonic() + TIMEOUT
    while client.show(image_id)['status'] != 'active':
        assert time.monotonic() < deadline
        time.sleep(0.2)
    image = client.show(image_id)
    assert (image['os_hash_algo'], image['checksum']) == ('sha512', None)
    assert remote.slow_started.wait(TIMEOUT)
    [task] = client.tasks_of(image_id)
    assert task['status'] == 'processing'
    assert client('DELETE', '/v2/images/%s' % image_id).status_code == 204
    # The read stops soon: a store chunk (4 MiB) is 7 s of this stream.
    assert remote.slow_abandoned.wait(30)
    task = _wait_for_task(Client(glance, admin=True), task['id'])
    assert task['status'] == 'failure'
    assert 'deleted' in task['message'], task


@pytest.mark.parametrize('url, status', [
    ('file:///etc/passwd', 403),            # members: http URLs only
    ('http://127.0.0.2/data', 400),         # not an allowed host
    ('http://127.0.0.1:1/data', 400),       # not an allowed port
    ('', 400),
])
def test_add_location_refuses_urls(glance, url, status):
    client = Client(glance)
    image_id = client.image()
    answer = client.add_location(image_id, url)
    assert answer.status_code == status, answer.text


def test_add_location_needs_a_queued_image_of_ones_project(glance, remote):
    client = Client(glance)
    image_id = client.image()
    assert client('PUT', '/v2/images/%s/file' % image_id, data=DATA,
                  headers={'Content-Type': 'application/octet-stream'}
                  ).status_code == 204
    answer = client.add_location(image_id, remote.url + '/data')
    assert answer.status_code == 409, answer.text
    other = Client(glance)
    assert other.add_location(image_id,
                              remote.url + '/data').status_code == 404


def test_without_do_secure_hash_validation_data_is_trusted(remote,
                                                           tmp_path):
    server = GlanceServer(tmp_path, _options(
        remote, do_secure_hash=False)).start()
    try:
        client = Client(server)
        trusted = client.image()
        client.add_location(trusted, remote.url + '/data',
                            os_hash_algo='sha256',
                            os_hash_value='ab' * 32)
        plain = client.image()
        client.add_location(plain, remote.url + '/data')
        for image_id in (trusted, plain):
            [task] = client.wait_for_tasks(image_id)
            assert task['status'] == 'success', task
        image = client.show(trusted)
        assert (image['status'], image['os_hash_algo'],
                image['os_hash_value'], image['checksum']) == (
            'active', 'sha256', 'ab' * 32, None)
        image = client.show(plain)
        assert (image['status'], image['size'], image['os_hash_algo'],
                image['checksum']) == ('active', len(DATA), None, None)
    finally:
        server.stop()


# --- JSON-patch /locations --------------------------------------------------

def test_patch_location_with_validation_data(glance, remote):
    client = Client(glance)
    image_id = client.image()
    given = {'checksum': '1' * 32, 'os_hash_algo': 'sha512',
             'os_hash_value': 'deadbeef' * 16}
    answer = client.patch(image_id, [{'op': 'add', 'path': '/locations/-',
                                      'value': {
                                          'url': remote.url + '/data',
                                          'metadata': {},
                                          'validation_data': given}}])
    assert answer.status_code == 200, answer.text
    image = client.show(image_id)
    assert image['status'] == 'active'
    assert {k: image[k] for k in given} == given
    assert image['locations'] == [{'url': remote.url + '/data',
                                   'metadata': {}}]
    same = {'url': remote.url + '/data#2', 'metadata': {},
            'validation_data': given}
    assert client.patch(image_id, [{'op': 'add', 'path': '/locations/-',
                                    'value': same}]).status_code == 200
    for key, other in (('checksum', '2' * 32),
                       ('os_hash_value', 'beefdead' * 16),
                       ('os_hash_algo', 'sha256')):
        changed = dict(same, url=remote.url + '/data#3',
                       validation_data=dict(given, **{key: other}))
        answer = client.patch(image_id, [{'op': 'add',
                                          'path': '/locations/-',
                                          'value': changed}])
        assert answer.status_code == 409, (key, answer.text)
    assert len(client.show(image_id)['locations']) == 2


@pytest.mark.parametrize('given', [
    {'checksum': '1' * 31 + 'x', 'os_hash_algo': 'sha512',
     'os_hash_value': 'ab' * 64},
    {'os_hash_algo': 'sha256', 'os_hash_value': 'ab' * 32},  # not ours
    {'os_hash_algo': 'sha512', 'os_hash_value': 'ab' * 32},  # size
])
def test_patch_location_refuses_bad_validation_data(glance, remote, given):
    client = Client(glance)
    image_id = client.image()
    answer = client.patch(image_id, [{'op': 'add', 'path': '/locations/-',
                                      'value': {
                                          'url': remote.url + '/data',
                                          'metadata': {},
                                          'validation_data': given}}])
    assert answer.status_code == 409, answer.text
    assert client.show(image_id)['status'] == 'queued'


def test_replace_locations_changes_only_metadata(glance, remote):
    client = Client(glance)
    image_id = client.image()
    urls = [remote.url + '/data#a', remote.url + '/data#b']
    for url in urls:
        assert client.patch(image_id, [{
            'op': 'add', 'path': '/locations/-',
            'value': {'url': url, 'metadata': {}}}]).status_code == 200
    locations = client.show(image_id)['locations']
    locations[1]['metadata'] = {'date': '2015-10-15'}
    answer = client.patch(image_id, [{'op': 'replace', 'path': '/locations',
                                      'value': list(reversed(locations))}])
    assert answer.status_code == 200, answer.text
    assert client.show(image_id)['locations'] == [
        {'url': urls[0], 'metadata': {}},
        {'url': urls[1], 'metadata': {'date': '2015-10-15'}}]
    for value in ([locations[0]],
                  [locations[0], {'url': urls[1] + 'x', 'metadata': {}}]):
        answer = client.patch(image_id, [{'op': 'replace',
                                          'path': '/locations',
                                          'value': value}])
        assert answer.status_code == 400, answer.text
    assert len(client.show(image_id)['locations']) == 2


# --- /v2/tasks --------------------------------------------------------------

def _import_task(url, disk_format='raw', **properties):
    return {'type': 'import', 'input': {
        'import_from': url, 'import_from_format': disk_format,
        'image_properties': dict({'disk_format': disk_format,
                                  'container_format': 'bare'},
                                 **properties)}}


def _wait_for_task(admin, task_id):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        task = admin('GET', '/v2/tasks/%s' % task_id).json()
        if task['status'] in ('success', 'failure'):
            return task
        time.sleep(0.2)
    raise AssertionError('task %s still %s' % (task_id, task['status']))


def test_import_task_creates_an_image_from_a_url(glance, remote):
    admin = Client(glance, admin=True)
    name = 'task-%s' % uuid.uuid4().hex[:8]
    created = admin('POST', '/v2/tasks',
                    json=_import_task(remote.url + '/data', name=name))
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers['Location'].endswith('/v2/tasks/%s' % task['id'])
    assert (task['type'], task['status']) == ('import', 'pending')
    assert task['self'] == '/v2/tasks/%s' % task['id']
    assert task['schema'] == '/v2/schemas/task'
    task = _wait_for_task(admin, task['id'])
    assert task['status'] == 'success', task
    assert task['expires_at'].endswith('Z')
    image = admin.show(task['result']['image_id'])
    assert (image['name'], image['status'], image['size']) == (
        name, 'active', len(DATA))
    assert image['checksum'] == hashlib.md5(DATA).hexdigest()
    listed = admin('GET', '/v2/tasks', params={'status': 'success'}).json()
    stub = next(t for t in listed['tasks'] if t['id'] == task['id'])
    assert 'input' not in stub and 'result' not in stub
    assert listed['schema'] == '/v2/schemas/tasks'


def test_import_task_with_data_of_another_format_fails(glance, remote):
    admin = Client(glance, admin=True)
    name = 'task-%s' % uuid.uuid4().hex[:8]
    created = admin('POST', '/v2/tasks', json=_import_task(
        remote.url + '/data', disk_format='qcow2', name=name))
    task = _wait_for_task(admin, created.json()['id'])
    assert task['status'] == 'failure'
    assert 'qcow2' in task['message'], task
    assert admin('GET', '/v2/images', params={'name': name}
                 ).json()['images'] == []


@pytest.mark.parametrize('body', [
    {'input': {}},
    {'type': 'import'},
    {'type': 'bogus', 'input': {}},
    {'type': 'location_import', 'input': {}},
    {'type': 'import', 'input': 'x'},
    _import_task('file:///etc/passwd'),
    _import_task('http://no-such-host.invalid/x.qcow2'),
    _import_task('http://127.0.0.1:1/x'),
    _import_task('http://127.0.0.1/x', visibility='bogus'),
])
def test_bad_task_is_400(glance, body):
    answer = Client(glance, admin=True)('POST', '/v2/tasks', json=body)
    assert answer.status_code == 400, answer.text


def test_tasks_api_rules(glance):
    admin, member = Client(glance, admin=True), Client(glance)
    assert member('GET', '/v2/tasks').status_code == 403
    assert member('POST', '/v2/tasks', json={}).status_code == 403
    assert member('GET', '/v2/tasks/%s' % uuid.uuid4()).status_code == 403
    assert admin('GET', '/v2/tasks/%s' % uuid.uuid4()).status_code == 404
    deleted = admin('DELETE', '/v2/tasks/%s' % uuid.uuid4())
    assert (deleted.status_code, deleted.headers['Allow']) == (405, 'GET')
    for query in ({'status': 'bogus'}, {'type': 'location_import'},
                  {'marker': 'not-a-uuid'}, {'marker': str(uuid.uuid4())},
                  {'sort_dir': 'up'}, {'sort_key': 'input'},
                  {'limit': '-1'}):
        answer = admin('GET', '/v2/tasks', params=query)
        assert answer.status_code == 400, (query, answer.text)
    for path in ('/v2/schemas/task', '/v2/schemas/tasks'):
        assert member('GET', path).status_code == 200


def test_bad_filter_option_fails_at_start(tmp_path):
    conf = write_conf(tmp_path / 'glance-api.conf', {
        'database': {'connection': 'sqlite:///%s/g.sqlite' % tmp_path},
        'import_filtering_opts': {'allowed_hosts': '127.0.0.1'}})
    result = run_command('api', conf, timeout=60)
    assert result.returncode == 1
    assert 'allowed_hosts' in result.stderr and 'Traceback' not in (
        result.stderr)
