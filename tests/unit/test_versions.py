"""The version document and the version negotiation filter, with webob
requests against the code (reference §3.1)."""

import pytest
import webob
import webob.dec

from glance.api import versions
from glance.api.middleware import version_negotiation

ALWAYS = {0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 17}
MULTI_STORE = {8, 10, 11, 12, 13}
CACHE = {14, 16}


def ids(minors):
    return {'v2.%d' % minor for minor in minors}


def document_of(response):
    assert response.content_type == 'application/json'
    return response.json['versions']


@pytest.mark.parametrize('backends, cache_dir, minors', [
    (None, None, ALWAYS),
    ({'fast': 'file', 'cheap': 'file'}, None, ALWAYS | MULTI_STORE),
    (None, '/var/lib/glance/image-cache', ALWAYS | CACHE),
    ({'fast': 'file'}, '/var/lib/glance/image-cache',
     ALWAYS | MULTI_STORE | CACHE),
])
def test_advertised_versions_follow_the_configuration(conf, backends,
                                                      cache_dir, minors):
    conf.set('enabled_backends', backends)
    conf.set('image_cache_dir', cache_dir)
    assert set(versions.advertised_minors()) == minors
    request = webob.Request.blank('/versions')
    document = versions.document(request)['versions']
    assert {v['id'] for v in document} == ids(minors)
    assert len(document) == len(minors)
    current = [v['id'] for v in document if v['status'] == 'CURRENT']
    assert current == ['v2.17']
    assert {v['status'] for v in document} == {'CURRENT', 'SUPPORTED'}


def test_links_use_the_request_url(conf):
    request = webob.Request.blank('/versions',
                                  base_url='http://images.example:9292/img')
    for version in versions.document(request)['versions']:
        assert version['links'] == [
            {'rel': 'self', 'href': 'http://images.example:9292/img/v2/'}]


@pytest.mark.parametrize('endpoint', ['https://glance.example.com',
                                      'https://glance.example.com/'])
def test_links_use_public_endpoint(conf, endpoint):
    conf.set('public_endpoint', endpoint)
    request = webob.Request.blank('/versions', base_url='http://10.0.0.1')
    for version in versions.document(request)['versions']:
        assert version['links'] == [
            {'rel': 'self', 'href': 'https://glance.example.com/v2/'}]


@pytest.mark.parametrize('path, status', [
    ('/versions', 200), ('/versions/', 200), ('/', 300), ('', 300)])
def test_versions_app(conf, path, status):
    response = webob.Request.blank(path).get_response(versions.versions_app)
    assert response.status_int == status
    assert {v['id'] for v in document_of(response)} == ids(ALWAYS)


class Recorder:
    """The app behind the filter: remembers the path it was given."""

    def __init__(self):
        self.paths = []

    @webob.dec.wsgify
    def __call__(self, req):
        self.paths.append(req.path_info)
        return webob.Response(body=b'v2 app')


@pytest.fixture
def negotiate(conf):
    """Send a request through the filter: (response, path the app saw)."""
    recorder = Recorder()
    app = version_negotiation.VersionNegotiationFilter.factory({})(recorder)

    def send(path, **headers):
        request = webob.Request.blank(path, headers=headers)
        response = request.get_response(app)
        return response, (recorder.paths.pop() if recorder.paths else None)

    return send


@pytest.mark.parametrize('path, seen', [
    ('/v2/images', '/v2/images'),
    ('/v2/images/1234/file', '/v2/images/1234/file'),
    ('/v2.0/images', '/v2/images'),
    ('/v2.3/images', '/v2/images'),
    ('/v2.9/schemas/image', '/v2/schemas/image'),
    ('/v2.17/images', '/v2/images'),
    ('/v2', '/v2'),
    ('/v2.15', '/v2'),
])
def test_advertised_version_is_rewritten_to_v2(negotiate, path, seen):
    response, app_path = negotiate(path)
    assert response.status_int == 200
    assert app_path == seen


@pytest.mark.parametrize('path', [
    '/v1/images', '/v3/images', '/v2.8/images', '/v2.14/images',
    '/v2.18/images', '/v2.100/images', '/v20/images', '/images'])
def test_unknown_version_gets_the_document(negotiate, path):
    response, app_path = negotiate(path)
    assert response.status_int == 300
    assert app_path is None
    assert {v['id'] for v in document_of(response)} == ids(ALWAYS)


@pytest.mark.parametrize('path, status', [('/', 300), ('/versions', 200),
                                          ('/versions/', 200)])
def test_version_document_is_answered_by_the_filter(negotiate, path,
                                                    status):
    response, app_path = negotiate(path)
    assert response.status_int == status
    assert app_path is None


def test_multi_store_versions_with_enabled_backends(conf, negotiate):
    conf.set('enabled_backends', {'fast': 'file'})
    for minor in MULTI_STORE:
        response, app_path = negotiate('/v2.%d/stores' % minor)
        assert app_path == '/v2/stores', minor
    response, _ = negotiate('/v2.14/images')
    assert response.status_int == 300


def test_cache_versions_with_image_cache_dir(conf, negotiate):
    conf.set('image_cache_dir', '/var/lib/glance/image-cache')
    for minor in CACHE:
        response, app_path = negotiate('/v2.%d/cache' % minor)
        assert app_path == '/v2/cache', minor


@pytest.mark.parametrize('accept, seen', [
    ('application/vnd.openstack.images-v2', '/v2/images'),
    ('application/vnd.openstack.images-v2.5', '/v2/images'),
    ('application/json, application/vnd.openstack.images-v2.17',
     '/v2/images'),
])
def test_accept_header_selects_the_version(negotiate, accept, seen):
    response, app_path = negotiate('/images', Accept=accept)
    assert response.status_int == 200
    assert app_path == seen


@pytest.mark.parametrize('accept', [
    'application/vnd.openstack.images-v1',
    'application/vnd.openstack.images-v2.8',
    'application/json'])
def test_unknown_accept_version_gets_the_document(negotiate, accept):
    response, app_path = negotiate('/images', Accept=accept)
    assert response.status_int == 300
    assert app_path is None


def test_path_that_is_not_utf8_is_400(conf):
    app = version_negotiation.VersionNegotiationFilter(Recorder())
    request = webob.Request.blank('/')
    # PEP 3333: PATH_INFO is bytes decoded as latin-1.
    request.environ['PATH_INFO'] = b'/v2/images/\xff'.decode('latin-1')
    response = request.get_response(app)
    assert response.status_int == 400
