"""Hundreds of generated malformed requests against every Images API v2
route: none may answer 5xx (nor drop the connection).

Each test sends one family of requests and reports every 5xx together in
one assertion message, so a run shows the whole list at once. The exact
4xx code is not checked here (test_images_api.py and friends do that).
"""

import itertools
import json

import pytest
import requests

from tests.functional import helpers
from tests.functional.helpers import OCTET, PATCH_V20, PATCH_V21, Api

server = helpers.server
# Hundreds of requests per test; generous for a loaded CI machine.
pytestmark = pytest.mark.timeout(600)

LONG_255 = 'x' * 256
LONG_64K = 'y' * 65537
EMOJI = 'smile \U0001F600'
ZERO_UUID = '00000000-0000-0000-0000-000000000000'

# Strings to put wherever the API expects a string.
BAD_STRINGS = ['', ' ', LONG_255, LONG_64K, EMOJI, '\x00', 'a\nb',
               '\u202e', '../../etc/passwd', '%s%n', "'; DROP TABLE images"]
# Values to put wherever the API expects something.
BAD_VALUES = [None, True, 0, -1, 2 ** 31, 2 ** 63, 10 ** 30, -(2 ** 63) - 1,
              1.5, 1e308, [], {}, [None], {'a': {'b': [1, {'c': None}]}},
              *BAD_STRINGS]
# Bodies that are not (usable) JSON.
BROKEN_BODIES = [
    b'{', b'[', b'{"name": ', b'{"name": "x",}', b"{'name': 'x'}",
    b'\xff\xfe\x00', b'\x00' * 10, b'NaN', b'Infinity', b'{"a": NaN}',
    b'[' * 100000, b'{"a":' * 50000, b'1e99999', b'-', b'tru', b'"',
    b'{"name": "\\ud800"}', b'{"name": "\\u0000"}', b'\xef\xbb\xbf{}',
    ('{"name": "%s"}' % ('z' * 1024 * 1024)).encode(),
]
NON_OBJECTS = [b'null', b'true', b'1', b'-1', b'"image"', b'[]', b'[{}]',
               b'[[]]', b'[null]', b'3.14']
CONTENT_TYPES = [None, 'text/plain', 'application/xml',
                 'application/x-www-form-urlencoded', 'multipart/form-data',
                 OCTET, PATCH_V21, 'application/json; charset=latin-1',
                 'application/json; charset=bogus', 'garbage', '*/*', ';;']
BAD_IDS = ['not-a-uuid', LONG_255, ZERO_UUID, ZERO_UUID.upper(),
           '{' + ZERO_UUID + '}', ZERO_UUID.replace('-', ''), '%00', '%ff',
           '%F0%9F%98%80', '..', '%2e%2e', '%2F', ' ', 'null', '-1',
           '1e400', 'x' * 4000]


class Collector:
    """Sends requests and remembers those answered with 5xx or not at
    all."""

    def __init__(self, api):
        self.api = api
        self.count = 0
        self.failures = []

    def send(self, method, path, api=None, **kwargs):
        self.count += 1
        kwargs.setdefault('timeout', 60)
        try:
            resp = (api or self.api).request(method, path, **kwargs)
        except requests.RequestException as error:
            sent = f'{method} {path[:120]}{self.describe(kwargs)}'
            self.failures.append(
                f'{sent} -> {type(error).__name__}: {str(error)[:150]}')
            return None
        if resp.status_code >= 500:
            sent = f'{method} {path[:120]}{self.describe(kwargs)}'
            self.failures.append(f'{sent} -> {resp.status_code}')
        return resp

    @staticmethod
    def describe(kwargs):
        """What was sent, shortened for the report."""
        detail = ''
        if kwargs.get('params'):
            detail += f" params={str(kwargs['params'])[:120]}"
        if kwargs.get('data') is not None:
            data = kwargs['data']
            detail += f' body={data[:100]!r}(len {len(data)})'
        if 'json' in kwargs:
            detail += f" json={json.dumps(kwargs['json'])[:120]}"
        if kwargs.get('headers'):
            detail += ' headers={!r}'.format({
                k: (v[:60] if isinstance(v, str) else v)
                for k, v in kwargs['headers'].items()})
        return detail

    def check(self, minimum):
        # The server survived it all.
        assert self.api.get('/v2/images?limit=1').status_code == 200
        assert not self.failures, '{} of {} requests failed:\n{}'.format(
            len(self.failures), self.count, '\n'.join(self.failures))
        assert self.count >= minimum, self.count


@pytest.fixture
def owner(server):
    return Api(server, helpers.new_project())


@pytest.fixture
def collector(owner):
    return Collector(owner)


@pytest.fixture
def images(owner, server):
    """A queued, an active and a shared image with a member."""
    member = helpers.new_project()
    queued = owner.create(name='queued', disk_format='raw',
                          container_format='bare', prop='v')
    active = owner.create_active(data=b'0123456789', name='active')
    shared = owner.create(name='shared')
    resp = owner.post(f"/v2/images/{shared['id']}/members",
                      json={'member': member})
    assert resp.status_code == 200, resp.text
    return {'queued': queued['id'], 'active': active['id'],
            'shared': shared['id'], 'member': member}


def json_headers(content_type='application/json'):
    return {'Content-Type': content_type}


def test_create_with_malformed_bodies(collector):
    send = collector.send
    for body in BROKEN_BODIES + NON_OBJECTS:
        send('POST', '/v2/images', data=body, headers=json_headers())
    for content_type in CONTENT_TYPES:
        headers = {'Content-Type': content_type} if content_type else {}
        send('POST', '/v2/images', data=b'{"name": "ct"}', headers=headers)
    fields = ['name', 'id', 'visibility', 'protected', 'min_ram', 'tags',
              'owner', 'extra_prop', 'status', 'locations', LONG_255, EMOJI,
              '']
    for field, value in itertools.product(fields, BAD_VALUES):
        send('POST', '/v2/images', json={field: value})
    for tags in ([LONG_255], [EMOJI], [1], [None], [[]], ['a'] * 1000,
                 [''], {'a': 'b'}):
        send('POST', '/v2/images', json={'tags': tags})
    send('POST', '/v2/images', json={f'k{i}': 'v' for i in range(2000)})
    collector.check(350)


def test_list_with_malformed_queries(collector, images):
    send = collector.send
    queries = []
    for key in ('limit', 'marker', 'sort_key', 'sort_dir', 'sort', 'name',
                'status', 'visibility', 'member_status', 'owner', 'tag',
                'protected', 'os_hidden', 'size_min', 'size_max',
                'created_at', 'updated_at', 'id', 'disk_format', 'min_ram',
                'checksum', 'extra', 'changes-since', LONG_255):
        for value in ['', '-1', '0', '1e400', '99999999999999999999999999',
                      '-99999999999999999999', '1.5', 'NaN', 'true',
                      LONG_255, LONG_64K[:8000], EMOJI, 'in:', 'in:,,,',
                      'in:"a', 'eq:', 'gte:', 'lt:2020-13-45T99:99:99Z',
                      'gt:' + LONG_255, ':', '::', 'asc:desc', '%00',
                      '%ff', '"', "'", '\\', ZERO_UUID]:
            queries.append({key: value})
    queries += [
        {'sort': 'name:asc:desc'}, {'sort': ',,,'}, {'sort': 'name:'},
        {'sort': ':asc'}, {'sort': 'name:asc,name:asc'},
        {'sort': 'bogus:sideways,name'},
        {'sort_key': ['name'] * 50, 'sort_dir': ['asc'] * 49},
        {'sort_key': ['name', 'id', 'bogus'], 'sort_dir': 'asc'},
        {'sort_key': 'name', 'sort_dir': ['asc', 'desc']},
        {'limit': ['1', '2']}, {'marker': [images['active'],
                                           images['queued']]},
        {'marker': images['active'], 'limit': '0'},
        {'marker': images['shared'], 'sort_key': 'size',
         'sort_dir': 'asc'},
        {'marker': images['queued'], 'sort': 'size:desc,name:asc'},
        {'tag': [LONG_255, EMOJI, '']},
        {'visibility': 'all', 'member_status': 'all', 'os_hidden': 'true'},
        {'size_min': '10', 'size_max': '1'},
        {'created_at': 'gte:2020-01-01T00:00:00Z',
         'updated_at': 'lt:1970-01-01'},
        {'limit': str(2 ** 63)}, {'limit': str(2 ** 64)},
        {'min_ram': str(2 ** 63)}, {'size_min': str(2 ** 64)},
    ]
    for params in queries:
        send('GET', '/v2/images', params=params)
    for raw in ('?%zz', '?&&&', '?=', '?==x', '?name', '?limit',
                '?%00=%00', '?' + '&'.join(['tag=t'] * 500),
                '?name=%F0%9F%98%80', '?name=%ED%A0%80', '?name=%C0%AF'):
        send('GET', '/v2/images' + raw)
    collector.check(700)


def test_show_delete_with_bad_ids(collector):
    send = collector.send
    for image_id in BAD_IDS:
        for method in ('GET', 'DELETE', 'PATCH', 'PUT', 'POST', 'HEAD',
                       'OPTIONS'):
            send(method, '/v2/images/' + image_id)
        for sub in ('file', 'tags/t', 'members', f'members/{LONG_255}',
                    'actions/deactivate', 'actions/reactivate', 'tasks',
                    'stage', 'import', 'locations'):
            send('GET', f'/v2/images/{image_id}/{sub}')
            send('POST', f'/v2/images/{image_id}/{sub}', json={})
    collector.check(400)


def test_bodies_where_none_is_expected(collector, images):
    send = collector.send
    for image_id in images.values():
        for body in (b'{}', b'{', b'x' * 100000, b'\xff'):
            for method, path in (
                    ('GET', f'/v2/images/{image_id}'),
                    ('DELETE', f'/v2/images/{image_id}/tags/none'),
                    ('GET', f'/v2/images/{image_id}/members'),
                    ('GET', f'/v2/images/{image_id}/file'),
                    ('POST', f'/v2/images/{image_id}/actions/reactivate'),
                    ('GET', '/v2/images'),
                    ('GET', '/v2/schemas/image')):
                send(method, path, data=body, headers=json_headers())
    collector.check(100)


def _patch_ops():
    """Malformed or invalid JSON-patch documents (as Python values)."""
    ops = []
    paths = ['', '/', '//', 'name', '/name/', '/a/b', '/a/b/c',
             '/locations', '/locations/0', '/locations/-', '/locations/x',
             '/locations/99', '/tags/0', '/~', '/~2', '/~01', '/%00',
             '/' + LONG_255, '/' + EMOJI, '/' + 'p' * 70000, 5, None, [],
             {}, '/os_glance_import_task', '/owner', '/id', '/status',
             '/deleted', '/self', '/checksum', '/size']
    for op, path in itertools.product(['add', 'replace', 'remove', 'move',
                                       '', None], paths):
        ops.append([{'op': op, 'path': path, 'value': 'v'}])
    values = BAD_VALUES + [
        {'url': 'file:///etc/passwd', 'metadata': {}},
        [{'url': 'http://x', 'metadata': 'm'}],
        {'url': LONG_255 * 300, 'metadata': {'a': EMOJI}},
    ]
    for (op, path), value in itertools.product(
            [('replace', '/name'), ('replace', '/visibility'),
             ('add', '/protected'), ('replace', '/min_ram'),
             ('add', '/tags'), ('replace', '/disk_format'),
             ('replace', '/prop'), ('add', '/new_prop'),
             ('replace', '/locations'), ('add', '/locations/-')],
            values):
        ops.append([{'op': op, 'path': path, 'value': value}])
    ops += [
        [{'op': 'add', 'path': '/a'}], [{'op': 'add'}], [{'path': '/a'}],
        [{}], [1], [None], ['add'], [[]], [[{'op': 'add'}]],
        {'op': 'add', 'path': '/a', 'value': 'v'}, None, 'add', 5,
        [{'op': 'add', 'path': '/a', 'value': 'v', 'extra': 1}],
        [{'op': ['add'], 'path': '/a', 'value': 'v'}],
        [{'op': {'add': 1}, 'path': '/a', 'value': 'v'}],
        [{'op': 'add', 'path': ['/a'], 'value': 'v'}],
        # Upstream too takes ~50 ms per operation: keep this one short.
        [{'op': 'add', 'path': '/a', 'value': 'v'}] * 100,
        [{'op': 'remove', 'path': '/prop'}] * 2,
    ]
    # Draft-4 style operations (the v2.0 media type).
    ops += [[{'add': '/a'}], [{'add': '/a', 'remove': '/b'}],
            [{'add': 5, 'value': 'v'}], [{'add': None, 'value': 'v'}],
            [{'replace': '/locations', 'value': 'x'}],
            [{'remove': '/name'}], [{'bogus': '/a', 'value': 'v'}]]
    return ops


def test_patch_with_malformed_documents(collector, images):
    send = collector.send
    ops = _patch_ops()
    for index, doc in enumerate(ops):
        image_id = images['queued'] if index % 2 else images['active']
        media_type = PATCH_V20 if index % 3 == 0 else PATCH_V21
        send('PATCH', f'/v2/images/{image_id}', data=json.dumps(doc),
             headers={'Content-Type': media_type})
    for body in BROKEN_BODIES + NON_OBJECTS:
        for media_type in (PATCH_V20, PATCH_V21):
            send('PATCH', f"/v2/images/{images['queued']}", data=body,
                 headers={'Content-Type': media_type})
    for content_type in CONTENT_TYPES + [PATCH_V21 + '; charset=utf-8',
                                         PATCH_V21.upper(),
                                         PATCH_V21.replace('2.1', '2.9')]:
        headers = {'Content-Type': content_type} if content_type else {}
        send('PATCH', f"/v2/images/{images['queued']}", headers=headers,
             data=b'[{"op": "add", "path": "/ct", "value": "v"}]')
    collector.check(500)


def test_upload_download_malformed(collector, images, owner):
    send = collector.send
    for content_type in CONTENT_TYPES + ['application/octet-stream; x=y',
                                         'APPLICATION/OCTET-STREAM']:
        headers = {'Content-Type': content_type} if content_type else {}
        image = owner.create(disk_format='raw', container_format='bare')
        send('PUT', f"/v2/images/{image['id']}/file", data=b'data',
             headers=headers)
    for image_id in (images['active'], images['shared']):
        send('PUT', f'/v2/images/{image_id}/file', data=b'again',
             headers={'Content-Type': OCTET})
    for header in ('x-openstack-image-size', 'X-Image-Meta-Store',
                   'Content-MD5', 'X-Image-Meta-Size'):
        for value in ('-1', 'abc', '1e400', str(2 ** 64), LONG_255):
            image = owner.create(disk_format='raw', container_format='bare')
            send('PUT', f"/v2/images/{image['id']}/file", data=b'data',
                 headers={'Content-Type': OCTET, header: value})
    ranges = ['bytes=', 'bytes=-', 'bytes=--1', 'bytes=1-2-3', 'bytes=a-',
              'bytes=-a', 'bytes=99999999999999999999-',
              'bytes=0-99999999999999999999', 'bytes=5-1', 'bytes=,',
              'bytes=0-1,', 'bytes=' + ','.join(['0-1'] * 500), '=0-1',
              'bits=0-1', LONG_255, 'bytes=\u00e9-1', 'bytes = 0 - 1',
              'bytes=-0', 'bytes=0-0', 'bytes=10-', 'bytes=9-']
    for image_id in (images['active'], images['queued']):
        for value in ranges:
            send('GET', f'/v2/images/{image_id}/file',
                 headers={'Range': value})
            send('GET', f'/v2/images/{image_id}/file',
                 headers={'Content-Range': value})
        send('GET', f'/v2/images/{image_id}/file',
             headers={'Range': 'bytes=0-1', 'Content-Range': 'bytes 1-2/3'})
    collector.check(100)


def test_tags_malformed(collector, images):
    send = collector.send
    tags = [LONG_255, 'x' * 4000, '%F0%9F%98%80', '%00', '%ff', '%2F',
            '%20', '.', '..', '%25', 'a%2Fb', '%C0%AF', '%ED%A0%80',
            'tag?x=1', 'tag#frag', '~', '%7E', "'", '"', '<script>']
    for image_id in images.values():
        for tag in tags:
            for method in ('PUT', 'DELETE', 'GET', 'POST'):
                send(method, f'/v2/images/{image_id}/tags/{tag}')
        send('PUT', f'/v2/images/{image_id}/tags/with-body',
             data=b'{', headers=json_headers())
    collector.check(300)


def test_members_malformed(collector, images, server):
    send = collector.send
    shared = images['shared']
    for body in BROKEN_BODIES + NON_OBJECTS:
        send('POST', f'/v2/images/{shared}/members', data=body,
             headers=json_headers())
        send('PUT', f"/v2/images/{shared}/members/{images['member']}",
             data=body, headers=json_headers())
    for value in BAD_VALUES:
        send('POST', f'/v2/images/{shared}/members', json={'member': value})
        send('POST', f'/v2/images/{shared}/members',
             json={'member': 'ok', 'extra': value})
        send('PUT', f'/v2/images/{shared}/members/{images["member"]}',
             json={'status': value})
    member_api = Api(server, images['member'])
    for value in BAD_VALUES:
        send('PUT', f'/v2/images/{shared}/members/{images["member"]}',
             api=member_api, json={'status': value})
    for member_id in BAD_IDS:
        for method in ('GET', 'PUT', 'DELETE', 'POST'):
            send(method, f'/v2/images/{shared}/members/{member_id}',
                 json={'status': 'accepted'})
    for image_id in (images['queued'], images['active']):
        send('POST', f'/v2/images/{image_id}/members', json={'member': 'x'})
        send('GET', f'/v2/images/{image_id}/members')
    collector.check(200)


def test_actions_and_other_routes(collector, images):
    send = collector.send
    for image_id in images.values():
        for name in ('deactivate', 'reactivate', 'DEACTIVATE', 'delete',
                     '', LONG_255, '%00'):
            for method in ('POST', 'GET', 'PUT', 'DELETE'):
                send(method, f'/v2/images/{image_id}/actions/{name}')
        send('POST', f'/v2/images/{image_id}/actions/deactivate',
             data=b'{"x": [', headers=json_headers())
    for path in ('/v2/schemas/image', '/v2/schemas/images',
                 '/v2/schemas/member', '/v2/schemas/members',
                 '/v2/schemas/' + LONG_255, '/v2/schemas/%00',
                 '/v2/info/stores', '/v2/info/stores/detail',
                 '/v2/info/import', '/v2/info/usage', '/v2/info/' + EMOJI,
                 '/v2/', '/v2', '/v2//images', '/v2/images/',
                 '/v2/images//file', '/v2/images?', '/v2.99/images',
                 '/v2.1/images', '/v3/images', '/', '/versions',
                 '/v2/' + 'x/' * 500, '/v2/tasks', '/v2/cache',
                 '/v2/metadefs/namespaces'):
        for method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS',
                       'HEAD', 'PROPFIND', 'TRACE'):
            send(method, path, data=b'{', headers=json_headers())
    collector.check(300)


def test_odd_headers(collector, images, server):
    send = collector.send
    paths = ['/v2/images', f"/v2/images/{images['active']}",
             f"/v2/images/{images['active']}/file"]
    headers_list = [
        {'X-Roles': ''}, {'X-Roles': ',,,'}, {'X-Roles': 'admin' * 1000},
        {'X-Project-Id': ''}, {'X-Project-Id': LONG_255 * 10},
        {'X-Roles': 'member', 'X-Project-Id': 'p', 'X-User-Id': ''},
        {'X-Tenant-Id': 'p'}, {'X-Roles': 'reader'},
        {'X-Roles': 'member,reader', 'X-Project-Id': 'caf\u00e9'},
        {'x-openstack-request-id': 'r' * 1000},
        {'x-openstack-request-id': ''},
        {'Accept': 'application/xml'}, {'Accept': 'garbage'},
        {'Accept': 'application/vnd.openstack.images-v9.9'},
        {'Accept-Encoding': 'gzip;q=bogus'},
        {'Content-Length': '0'},
        {'X-Auth-Token': LONG_255}, {'X-Service-Catalog': '{'},
        {'X-Identity-Status': 'Invalid'},
        {'X-Forwarded-Proto': 'gopher'}, {'X-Forwarded-Host': '%00'},
        {'Host': ''}, {'Host': LONG_255},
    ]
    for path, headers in itertools.product(paths, headers_list):
        send('GET', path, headers=headers)
    # Requests that the requests library would not send as they are.
    raw_requests = [
        b'GET /v2/images/\x00 HTTP/1.1\r\nHost: x\r\n\r\n',
        b'GET /v2/images/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n',
        b'GET /v2/images?name=\xf0\x9f\x98\x80 HTTP/1.1\r\nHost: x\r\n\r\n',
        b'GET /v2/images/%zz HTTP/1.1\r\nHost: x\r\n\r\n',
        b'PUT /v2/images/' + images['queued'].encode()
        + b'/tags/\xe9 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
        (b'POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: '
         b'application/json\r\nContent-Length: 5\r\n\r\n{\xff\xfe}}'),
        (b'POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: '
         b'application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'2\r\n{}\r\nzz\r\n'),
        b'GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Roles: \xff\xfe\r\n\r\n',
        (b'GET /v2/images HTTP/1.1\r\nHost: x\r\nX-Project-Id: \xc3\xa9\r\n'
         b'X-Roles: member\r\n\r\n'),
    ]
    for raw in raw_requests:
        collector.count += 1
        answer = helpers.raw_http(server, raw.replace(
            b'\r\n\r\n', b'\r\nConnection: close\r\n\r\n', 1), timeout=20)
        status = helpers.status_of(answer)
        if status >= 500:
            collector.failures.append(f'raw {raw[:80]!r} -> {status}')
    collector.check(70)
