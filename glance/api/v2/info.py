"""Discovery: import methods, stores and usage."""

from oslo_config import cfg

from glance.api import common
from glance.common import exception

CONF = cfg.CONF


@common.no_body
def import_methods(req):
    return common.json_response({'import-methods': {
        'description': 'Import methods available.', 'type': 'array',
        'value': CONF.enabled_import_methods}})


@common.no_body
def stores(req):
    # Until multi-store (enabled_backends) is served, answer as upstream
    # does for a single-store site, for both the list and its detail.
    raise exception.NotFound('Multi backend is not supported at this site.')


@common.no_body
def usage(req):
    return common.json_response({'usage': {}})
