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
from glance.api.v2 import image_data
from glance.api.v2 import images
from glance.api.v2 import info
from glance.api.v2 import locations
from glance.api.v2 import members
from glance.api.v2 import schemas
from glance.api.v2 import tags
from glance.api.v2 import tasks
from glance.common import exception

LOG = logging.getLogger(__name__)

# Leftover request bytes read before answering; more means closing.
UNREAD_BODY_LIMIT = 1024 * 1024

ROUTES = {
    '/images': {'GET': images.index, 'POST': images.create},
    '/images/{image_id}': {'GET': images.show, 'PATCH': images.update,
                           'DELETE': images.delete},
    '/images/{image_id}/file': {'PUT': image_data.upload,
                                'GET': image_data.download},
    '/images/{image_id}/actions/deactivate': {'POST': images.deactivate},
    '/images/{image_id}/actions/reactivate': {'POST': images.reactivate},
    '/images/{image_id}/locations': {'POST': locations.add,
                                     'GET': locations.index},
    '/images/{image_id}/tags/{tag}': {'PUT': tags.add, 'DELETE': tags.delete},
    '/images/{image_id}/tasks': {'GET': tasks.of_image},
    '/images/{image_id}/members': {'GET': members.index,
                                   'POST': members.create},
    '/images/{image_id}/members/{member_id}': {'GET': members.show,
                                               'PUT': members.update,
                                               'DELETE': members.delete},
    '/stores/{store_id}/{image_id}': {'DELETE': images.delete_from_store},
    '/schemas/image': {'GET': schemas.image},
    '/schemas/images': {'GET': schemas.images},
    '/schemas/member': {'GET': schemas.member},
    '/schemas/members': {'GET': schemas.members},
    '/schemas/task': {'GET': schemas.task},
    '/schemas/tasks': {'GET': schemas.tasks},
    # Deleting a task answers 405 (Allow: GET): tasks expire by themselves.
    '/tasks': {'GET': tasks.index, 'POST': tasks.create},
    '/tasks/{task_id}': {'GET': tasks.show},
    '/info/import': {'GET': info.import_methods},
    '/info/stores': {'GET': info.stores},
    '/info/stores/detail': {'GET': info.stores_detail},
    '/info/usage': {'GET': info.usage},
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
        response = self._dispatch(req)
        _drop_unread_body(req, response)
        return response

    def _dispatch(self, req):
        try:
            req.GET  # decoded now, so that bad UTF-8 is a 400 here
        except UnicodeDecodeError:
            return webob.exc.HTTPBadRequest(
                explanation='The query string is not valid UTF-8.')
        match = self.mapper.match(req.path_info)
        if match is None:
            return webob.exc.HTTPNotFound()
        template = match.pop('template')
        methods = self.route_table[template]
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


def _drop_unread_body(req, response):
    """Read what a handler may have left of a small request body (it takes
    none, or it failed first), so the connection can carry the next request
    while a client is still sending; after a large one, close instead."""
    left_unread = (req.method in ('GET', 'HEAD', 'DELETE')
                   or response.status_code >= 400)
    if not (req.content_length and left_unread):
        return
    if req.content_length > UNREAD_BODY_LIMIT:
        response.headers['Connection'] = 'close'
        return
    try:
        req.body_file_raw.read(req.content_length)
    except Exception:
        response.headers['Connection'] = 'close'
