"""Request and response plumbing shared by the v2 handlers."""

import functools

from oslo_serialization import jsonutils
import webob
import webob.exc

from glance import gateway
from glance.common import exception
from glance import policy


def context(req):
    return req.environ['glance.context']


def json_response(body, status=200, headers=None):
    response = webob.Response(status=status, content_type='application/json',
                              charset='UTF-8')
    response.headers.update(headers or {})
    response.body = jsonutils.dump_as_bytes(body)
    return response


def no_content(status=204):
    """An empty response (204, or 202 for work accepted)."""
    return webob.Response(status=status)


def has_body(req):
    return bool(req.content_length) or (
        'Transfer-Encoding' in req.headers
        and req.method in ('POST', 'PUT', 'PATCH'))


def no_body(handler):
    """Routes that take no body refuse one, as upstream does."""
    @functools.wraps(handler)
    def refusing(req, **kwargs):
        if has_body(req):
            raise webob.exc.HTTPBadRequest(
                explanation='A body is not expected with this request.')
        return handler(req, **kwargs)
    return refusing


class _UwsgiChunkedBody:
    """uWSGI hands a chunked request body out only through its own API."""

    def __init__(self):
        import uwsgi  # only importable inside a uWSGI worker
        self.next_chunk = uwsgi.chunked_read
        self.buffer = b''
        self.done = False

    def read(self, size=-1):
        while not self.done and (size < 0 or len(self.buffer) < size):
            chunk = self.next_chunk()
            self.done = not chunk
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


class _KnownLengthBody:
    """A Content-Length body read from the WSGI server's input as it comes.

    webob's ``body_file`` for such a body is a BufferedReader over a
    length-limiting RawIOBase, which allocates and copies every large read
    twice more: about 0.85 s of CPU per GiB of image uploaded."""

    def __init__(self, raw, length):
        self.raw = raw
        self.remaining = length

    def read(self, size=-1):
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if not size:
            return b''
        data = self.raw.read(size)
        if not data:
            raise IOError('the client sent %d bytes less than its '
                          'Content-Length' % self.remaining)
        self.remaining -= len(data)
        return data


def body_stream(req):
    """A file-like request body to stream from, chunked ones included."""
    chunked = 'chunked' in req.headers.get('Transfer-Encoding', '').lower()
    if chunked and 'uwsgi.version' in req.environ:
        return _UwsgiChunkedBody()
    if not chunked and req.content_length and not req.is_body_seekable:
        return _KnownLengthBody(req.body_file_raw, req.content_length)
    return req.body_file


def json_body(req, expected=dict):
    """The request body decoded from JSON; 400 unless it is ``expected``."""
    try:
        raw = req.body
    except Exception:
        # Whatever the server raises for a broken (e.g. chunked) stream.
        raise webob.exc.HTTPBadRequest(
            explanation='The request body could not be read.')
    try:
        body = jsonutils.loads(raw)
    except (ValueError, RecursionError):
        raise webob.exc.HTTPBadRequest(
            explanation='Malformed JSON in request body.')
    if not isinstance(body, expected):
        raise webob.exc.HTTPBadRequest(
            explanation='Unexpected body type. Expected %s.'
            % ('list' if expected is list else 'dict'))
    return body


def policy_target(image):
    """What policy rules about an image may refer to."""
    attributes = {k: str(v) for k, v in image.extra_properties.items()}
    attributes.update(id=image.image_id, owner=image.owner,
                      visibility=image.visibility, status=image.status,
                      protected=image.protected)
    return policy.image_target(attributes, member=image.member)


def authorize_on_image(ctx, action, image):
    """Check ``action`` on an image: callers who can't even see the image
    get 404, as upstream answers, others 403."""
    target = policy_target(image)
    if not policy.check(ctx, action, target):
        if not policy.check(ctx, 'get_image', target):
            raise exception.ImageNotFound(image_id=image.image_id)
        policy.authorize(ctx, action, target)


def find_image(req, image_id, action='get_image'):
    """The image (through the gateway) and its repository, after checking
    ``action``; 404 for images the caller can't see. As upstream, a rule
    that allows ``action`` is enough: the service role may fetch the
    locations of an image that get_image would hide from it."""
    ctx = context(req)
    repo = gateway.image_repo(ctx)
    image = repo.get(image_id)
    authorize_on_image(ctx, action, image)
    return repo, image
