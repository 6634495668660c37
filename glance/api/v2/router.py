"""The Images API v2 at a glance: every path, method and handler.

``ROUTES`` maps a path template to ``{method: handler}``; a handler takes
the request and the template's variables and returns a response. Paths
that match no template answer 404, a known path with another method 405
with ``Allow``, and a method HTTP doesn't know for us 501.
"""

from oslo_log import log as logging
import routes
import webob.dec
import webob.exc

from glance.api import faults
from glance.common import exception

LOG = logging.getLogger(__name__)

KNOWN_METHODS = {'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'}

ROUTES = {
}


class API:
    """WSGI app dispatching ``/v2`` requests through ``routes``."""

    def __init__(self, route_table):
        self.route_table = route_table
        self.mapper = routes.Mapper()
        for template in route_table:
            self.mapper.connect(template, template=template)

    @classmethod
    def factory(cls, global_conf=None, **local_conf):
        return cls(ROUTES)

    @webob.dec.wsgify
    def __call__(self, req):
        match = self.mapper.match(req.path_info)
        if match is None:
            return webob.exc.HTTPNotFound()
        template = match.pop('template')
        methods = self.route_table[template]
        if req.method not in KNOWN_METHODS:
            return webob.exc.HTTPNotImplemented()
        handler = methods.get(req.method)
        if handler is None:
            return webob.exc.HTTPMethodNotAllowed(
                headers=[('Allow', ', '.join(sorted(methods)))])
        try:
            return handler(req, **match)
        except webob.exc.HTTPException as error:
            return error
        except exception.GlanceError as error:
            return faults.to_http(error)
        except Exception:
            LOG.exception('Unexpected error handling %s %s',
                          req.method, req.path)
            return webob.exc.HTTPInternalServerError()
