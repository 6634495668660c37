"""Discovery: import methods, stores and usage."""

from oslo_config import cfg

from glance.api import common
from glance import policy
from glance import stores as store_layer

CONF = cfg.CONF


@common.no_body
def import_methods(req):
    return common.json_response({'import-methods': {
        'description': 'Import methods available.', 'type': 'array',
        'value': CONF.enabled_import_methods}})


@common.no_body
def stores(req):
    store_layer.require_multi_store()
    return common.json_response({'stores': store_layer.listing()})


@common.no_body
def stores_detail(req):
    # Before the policy check, as upstream.
    store_layer.require_multi_store()
    ctx = common.context(req)
    policy.authorize(ctx, 'stores_info_detail', {'project_id': ctx.project_id})
    return common.json_response({'stores': store_layer.details()})


@common.no_body
def usage(req):
    return common.json_response({'usage': {}})
