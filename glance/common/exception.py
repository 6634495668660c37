"""The project's own errors.

Domain and DB code raise these; ``glance.api.faults`` maps them to HTTP
status codes and ``glance.cmd`` to one-line messages and exit codes.
"""


class GlanceError(Exception):
    """Base class; the message is meant for the user."""

    message = 'An unknown error occurred.'

    def __init__(self, message=None, **kwargs):
        self.msg = message or self.message % kwargs
        super().__init__(self.msg)


class NotFound(GlanceError):
    message = 'Not found.'


class ImageNotFound(NotFound):
    message = 'No image found with ID %(image_id)s.'


class Duplicate(GlanceError):
    message = 'Already exists.'


class Conflict(GlanceError):
    message = 'Conflict.'


class Forbidden(GlanceError):
    message = 'Forbidden.'


class Invalid(GlanceError):
    message = 'Invalid data.'


class UnsupportedData(GlanceError):
    message = 'Unsupported data.'


class LimitExceeded(GlanceError):
    message = 'Limit exceeded.'


class DatabaseUnavailable(GlanceError):
    message = 'Cannot reach the database: %(reason)s'


class BadDatabaseURL(GlanceError):
    message = 'Invalid [database] connection %(url)r: %(reason)s'


class UnknownRevision(GlanceError):
    message = 'Unknown database revision %(revision)r.'


class DatabaseNotVersioned(GlanceError):
    message = ('Database is not under version control; run '
               '"glance-manage db sync".')
