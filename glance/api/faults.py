"""The one place where the project's errors become HTTP status codes."""

import webob.exc

from glance.common import exception

# Most specific first: the first class an error is an instance of wins.
STATUS_FOR_ERROR = [
    (exception.NotFound, webob.exc.HTTPNotFound),
    (exception.Duplicate, webob.exc.HTTPConflict),
    (exception.Conflict, webob.exc.HTTPConflict),
    (exception.Forbidden, webob.exc.HTTPForbidden),
    (exception.Invalid, webob.exc.HTTPBadRequest),
    (exception.UnsupportedData, webob.exc.HTTPUnsupportedMediaType),
    (exception.LimitExceeded, webob.exc.HTTPRequestEntityTooLarge),
    (exception.DatabaseUnavailable, webob.exc.HTTPServiceUnavailable),
]


def to_http(error):
    """An HTTP error response for a GlanceError."""
    for error_class, http_class in STATUS_FOR_ERROR:
        if isinstance(error, error_class):
            return http_class(explanation=error.msg)
    return webob.exc.HTTPInternalServerError()
