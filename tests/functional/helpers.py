"""Helpers for the Images API v2 functional tests (raw HTTP with requests).

Identity without keystone: the server's no-auth pipeline takes the caller
from ``X-Roles``/``X-Project-Id``/``X-User-Id`` when they are sent; a client
that sends none of them acts as an admin of project ``default``. ``Api``
wraps a ``requests.Session`` that always sends one identity.

``shared_server(name, options)`` builds a session-scoped fixture for a
glance-api with non-default options, started once per test session (per
xdist worker) however many modules use it.

To check the tests themselves against upstream Glance (an oracle), set
``GLANCE_TEST_ORACLE=URL,IMAGES_DIR,SQLITE_PATH`` for an upstream
glance-api already running single-store on SQLite with the header-trusting
pipeline (``../shared/upstream``): the ``server`` fixture then points at
it and every request carries ``X-Identity-Status: Confirmed`` (admin
requests get explicit admin headers). Tests that need a server with other
options still run against this project's server.
"""

import hashlib
import json
import os
import re
import socket
import sqlite3
import uuid

import pytest
import requests

from tests.functional.conftest import GlanceServer

PATCH_V21 = 'application/openstack-images-v2.1-json-patch'
PATCH_V20 = 'application/openstack-images-v2.0-json-patch'
OCTET = 'application/octet-stream'

BASE_FIELDS = (
    'id', 'name', 'status', 'visibility', 'protected', 'os_hidden',
    'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size',
    'virtual_size', 'container_format', 'disk_format', 'created_at',
    'updated_at', 'tags', 'min_ram', 'min_disk', 'self', 'file', 'schema')
TIMESTAMP = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
UUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                  r'[0-9a-f]{12}$')
TIMEOUT = 60
ORACLE = os.environ.get('GLANCE_TEST_ORACLE')


def new_project():
    """A project id no other test uses."""
    return f'proj-{uuid.uuid4().hex[:12]}'


def identity(project, roles='member,reader', user=None):
    """Headers that make the no-auth pipeline act as ``project``."""
    return {'X-Roles': roles, 'X-Project-Id': project,
            'X-User-Id': user or f'user-of-{project}'}


class Api:
    """An HTTP client of one glance-api acting as one identity.

    ``Api(server)`` sends no identity headers (admin of project
    ``default``); ``Api(server, project='p1')`` is a member/reader of p1;
    ``roles`` overrides the roles (``'admin'``, ``'reader'``...).
    """

    def __init__(self, server, project=None, roles='member,reader'):
        self.server = server
        self.url = server.url
        self.project = project
        self.session = requests.Session()
        if project is not None:
            self.session.headers.update(identity(project, roles))
        if getattr(server, 'oracle', False):
            self.session.headers['X-Identity-Status'] = 'Confirmed'
            if project is None:
                self.session.headers.update(
                    identity('default', 'admin,member,reader'))

    def request(self, method, path, **kwargs):
        kwargs.setdefault('timeout', TIMEOUT)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request('GET', path, **kwargs)

    def post(self, path, **kwargs):
        return self.request('POST', path, **kwargs)

    def put(self, path, **kwargs):
        return self.request('PUT', path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request('DELETE', path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request('PATCH', path, **kwargs)

    # Image shortcuts -----------------------------------------------------

    def create(self, **body):
        """POST /v2/images, asserting 201; returns the image."""
        resp = self.post('/v2/images', json=body)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return resp.json()

    def show(self, image_id):
        resp = self.get(f'/v2/images/{image_id}')
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def update(self, image_id, ops, media_type=PATCH_V21):
        """PATCH the image with a JSON-patch list; returns the response."""
        return self.patch(f'/v2/images/{image_id}', data=json.dumps(ops),
                          headers={'Content-Type': media_type})

    def upload(self, image_id, data, content_type=OCTET, headers=None):
        hdrs = {'Content-Type': content_type}
        hdrs.update(headers or {})
        return self.put(f'/v2/images/{image_id}/file', data=data,
                        headers=hdrs)

    def download(self, image_id, headers=None):
        return self.get(f'/v2/images/{image_id}/file', headers=headers)

    def create_active(self, data=b'some image data', **body):
        """An image with data uploaded (status active); returns the image."""
        body.setdefault('disk_format', 'raw')
        body.setdefault('container_format', 'bare')
        image = self.create(**body)
        resp = self.upload(image['id'], data)
        assert resp.status_code == 204, (resp.status_code, resp.text)
        return self.show(image['id'])

    def list(self, query='', **params):
        """GET /v2/images; asserts 200 and returns the body."""
        resp = self.get('/v2/images' + query, params=params or None)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def list_ids(self, query='', **params):
        return [image['id'] for image in self.list(query, **params)['images']]

    def list_all(self, query=''):
        """Every image of a listing, following ``next`` links."""
        images = []
        path = '/v2/images' + query
        for _ in range(1000):
            resp = self.get(path)
            assert resp.status_code == 200, (resp.status_code, resp.text)
            body = resp.json()
            images.extend(body['images'])
            if 'next' not in body:
                return images
            path = body['next']
        raise AssertionError('pagination did not end')


def error_text(resp):
    """Status and start of the body, for assertion messages."""
    return f'{resp.status_code} {resp.text[:500]}'


def sqlite_path(server):
    url = server.database_url
    assert url.startswith('sqlite:///'), url
    return url[len('sqlite:///'):]


def db_rows(server, sql, *params):
    """Rows (as dicts) of a read-only query on the server's SQLite DB."""
    conn = sqlite3.connect(f'file:{sqlite_path(server)}?mode=ro', uri=True,
                           timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def image_row(server, image_id):
    rows = db_rows(server, 'SELECT * FROM images WHERE id = ?', image_id)
    assert len(rows) == 1, rows
    return rows[0]


def stored_files(server):
    """Names of the files in the filesystem store directory."""
    try:
        return sorted(os.listdir(server.images_dir))
    except FileNotFoundError:
        return []


def md5(data):
    return hashlib.md5(data).hexdigest()


def sha512(data):
    return hashlib.sha512(data).hexdigest()


def raw_http(server, request_bytes, read=True, timeout=30):
    """Send raw bytes on a new connection; returns the raw answer."""
    with socket.create_connection(('127.0.0.1', server.port),
                                  timeout=timeout) as sock:
        sock.sendall(request_bytes)
        if not read:
            return b''
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks)


def status_of(raw_response):
    """The status code of a raw HTTP/1.x response (0 if none)."""
    match = re.match(rb'HTTP/1\.[01] (\d{3})', raw_response)
    return int(match.group(1)) if match else 0


class OracleServer:
    """An upstream glance-api given by GLANCE_TEST_ORACLE."""

    oracle = True

    def __init__(self, spec):
        self.url, self.images_dir, db_path = spec.split(',')
        self.url = self.url.rstrip('/')
        self.port = int(self.url.rsplit(':', 1)[1])
        self.database_url = 'sqlite:///' + db_path


@pytest.fixture(scope='module')
def server(request):
    """The glance-api under test: the module's ``glance`` (or the oracle)."""
    if ORACLE:
        return OracleServer(ORACLE)
    return request.getfixturevalue('glance')


# Servers with non-default options, shared by every module that uses them.

_SHARED = {}


def shared_server(name, options):
    """A session-scoped fixture ``name`` for a glance-api with ``options``.

    Assign the result to a module-level name equal to ``name`` in each test
    module that uses it; the server is started once per session.
    """

    @pytest.fixture(scope='session', name=name)
    def fixture(tmp_path_factory):
        server = _SHARED.get(name)
        if server is None or server.process.poll() is not None:
            server = GlanceServer(tmp_path_factory.mktemp(name),
                                  options).start()
            _SHARED[name] = server
        yield server
        server.stop()

    return fixture


# Small quotas: sizes are in bytes, storage quota is per owner.
QUOTA_OPTIONS = {'DEFAULT': {
    'image_size_cap': 4096,
    'user_storage_quota': '6KB',
    'image_property_quota': 3,
    'image_tag_quota': 2,
    'image_member_quota': 2,
}}

# Listing limits, location display, delayed delete, another hash.
CONFIG_OPTIONS = {'DEFAULT': {
    'hashing_algorithm': 'sha256',
    'limit_param_default': 3,
    'api_limit_max': 5,
    'show_image_direct_url': True,
    'show_multiple_locations': True,
    'delayed_delete': True,
}}
