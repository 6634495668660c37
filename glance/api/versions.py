"""The version document served on ``/`` (300) and ``/versions`` (200)."""

from oslo_config import cfg
from oslo_serialization import jsonutils
import webob
import webob.dec

CONF = cfg.CONF

CURRENT = (2, 17)
# Minor versions and what must be configured for them to be offered.
_ALWAYS = [0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 17]
_MULTI_STORE = [8, 10, 11, 12, 13]
_CACHE = [14, 16]


def advertised_minors():
    """Minor versions of 2.x this configuration offers, newest first."""
    minors = list(_ALWAYS)
    if CONF.enabled_backends:
        minors += _MULTI_STORE
    if CONF.image_cache_dir:
        minors += _CACHE
    return sorted(minors, reverse=True)


def document(req):
    base = (CONF.public_endpoint or req.application_url).rstrip('/')
    return {'versions': [
        {'id': 'v2.%d' % minor,
         'status': 'CURRENT' if (2, minor) == CURRENT else 'SUPPORTED',
         'links': [{'rel': 'self', 'href': '%s/v2/' % base}]}
        for minor in advertised_minors()]}


def response(req, status):
    return webob.Response(status=status, content_type='application/json',
                          charset='UTF-8',
                          body=jsonutils.dump_as_bytes(document(req)))


@webob.dec.wsgify
def versions_app(req):
    if req.path_info.rstrip('/') == '/versions':
        return response(req, 200)
    return response(req, 300)


def create_resource(global_conf=None, **local_conf):
    """paste.app_factory for the version document."""
    return versions_app
