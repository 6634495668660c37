"""Discovery: stores and usage."""

from glance.api import common
from glance.common import exception


@common.no_body
def stores(req):
    # Until multi-store (enabled_backends) is served, answer as upstream
    # does for a single-store site, for both the list and its detail.
    raise exception.NotFound('Multi backend is not supported at this site.')


@common.no_body
def usage(req):
    return common.json_response({'usage': {}})
