"""Request context and request id for every call into the API.

``ContextMiddleware`` (the ``keystone`` flavor) trusts the identity headers
keystonemiddleware's auth_token sets and refuses unauthenticated calls
(or, with ``allow_anonymous_access``, lets them read).
``UnauthenticatedContextMiddleware`` (no flavor, the embedded default)
takes the identity from ``X-Roles``/``X-Project-Id``/``X-User-Id`` when a
client sends them, and otherwise acts as an admin of a default project, so
curl, the glance CLI and openstacksdk work without keystone.
"""

import uuid

from oslo_config import cfg
import webob
import webob.dec
import webob.exc

from glance import context
from glance import policy

CONF = cfg.CONF

NOAUTH_PROJECT_ID = 'default'
NOAUTH_ROLES = ['admin', 'member', 'reader']
REQUEST_ID_HEADER = 'x-openstack-request-id'
READ_METHODS = ('GET', 'HEAD', 'OPTIONS')


def _request_id(req):
    """The caller's request id (prefixed ``req-``) or a new one.

    Raises 431 for an id longer than ``max_request_id_length``.
    """
    given = req.headers.get(REQUEST_ID_HEADER)
    if not given:
        return 'req-%s' % uuid.uuid4()
    if len(given) > CONF.max_request_id_length:
        raise webob.exc.HTTPRequestHeaderFieldsTooLarge(
            explanation='x-openstack-request-id is longer than %d '
                        'characters.' % CONF.max_request_id_length)
    return given if given.startswith('req-') else 'req-' + given


class _ContextMiddleware:

    def __init__(self, app):
        self.app = app

    @classmethod
    def factory(cls, global_conf=None, **local_conf):
        return cls

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            request_id = _request_id(req)
            req.environ['glance.context'] = self.make_context(req,
                                                              request_id)
        except webob.exc.HTTPException as error:
            response = error
            request_id = 'req-%s' % uuid.uuid4()
        else:
            response = req.get_response(self.app)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def make_context(self, req, request_id):
        raise NotImplementedError


def _context_from_headers(req, request_id):
    """The identity keystonemiddleware (or a trusted client) put in the
    headers: user, project, roles, system scope, service roles, catalog."""
    ctx = context.RequestContext.from_environ(
        req.environ, request_id=request_id,
        service_catalog=req.headers.get('X-Service-Catalog'))
    ctx.roles = [role.lower() for role in ctx.roles]
    # Admin is whatever the deployment's context_is_admin rule says.
    ctx.is_admin = policy.check(ctx, 'context_is_admin', {})
    return ctx


class ContextMiddleware(_ContextMiddleware):
    """Context from a keystone-validated request. Without a valid token:
    401, or with ``allow_anonymous_access`` an anonymous context that may
    only read (what the policies let a caller without roles read)."""

    def make_context(self, req, request_id):
        if req.headers.get('X-Identity-Status') == 'Confirmed':
            return _context_from_headers(req, request_id)
        if not CONF.allow_anonymous_access:
            raise webob.exc.HTTPUnauthorized()
        if req.method not in READ_METHODS:
            raise webob.exc.HTTPForbidden(explanation='Read-only access')
        return context.RequestContext(read_only=True, request_id=request_id)


class UnauthenticatedContextMiddleware(_ContextMiddleware):
    """Context for a deployment without keystone."""

    def make_context(self, req, request_id):
        if req.headers.get('X-Roles') or req.headers.get('X-Project-Id'):
            return _context_from_headers(req, request_id)
        return context.RequestContext(
            project_id=NOAUTH_PROJECT_ID, roles=list(NOAUTH_ROLES),
            is_admin=True, request_id=request_id)
