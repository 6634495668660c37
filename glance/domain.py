"""The image domain: images, members and the status state machine.

Pure Python, no I/O: repositories (``glance.gateway``) load and save these
objects; the API layer changes them and maps the errors raised here to
HTTP answers.
"""

import uuid

from glance.common import exception
from glance.common.utils import utcnow

# Which status an image may move to from each status (upstream's table).
STATUS_TRANSITIONS = {
    'queued': {'saving', 'uploading', 'importing', 'active', 'deleted'},
    'saving': {'active', 'killed', 'deleted', 'queued'},
    'uploading': {'importing', 'queued', 'deleted'},
    'importing': {'active', 'deleted', 'queued'},
    'active': {'pending_delete', 'deleted', 'deactivated'},
    'killed': {'deleted'},
    'pending_delete': {'deleted', 'active'},
    'deactivated': {'active', 'deleted'},
    'deleted': set(),
}
# A location's data is served while 'active'; 'pending_delete' waits for
# its data to be deleted (by this request or by the scrubber); 'deleted'
# means the data is gone. Restoring a pending_delete image revives them.
LOCATION_TRANSITIONS = {
    'active': {'pending_delete', 'deleted'},
    'pending_delete': {'deleted', 'active'},
    'deleted': set(),
}
# Moving to these needs both formats set.
STATUSES_NEEDING_FORMATS = {'saving', 'active', 'importing'}
VISIBILITIES = ('public', 'private', 'shared', 'community')
MEMBER_STATUSES = ('pending', 'accepted', 'rejected')

BASE_ATTRIBUTES = ('id', 'name', 'status', 'visibility', 'protected',
                   'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value',
                   'owner', 'size', 'virtual_size', 'container_format',
                   'disk_format', 'created_at', 'updated_at', 'min_ram',
                   'min_disk')
# Set by the service, never by a client.
READONLY_ATTRIBUTES = frozenset({
    'created_at', 'updated_at', 'status', 'checksum', 'os_hash_algo',
    'os_hash_value', 'size', 'virtual_size', 'direct_url', 'self', 'file',
    'schema', 'stores', 'id'})
# Names no extra property may take.
RESERVED_ATTRIBUTES = frozenset({'owner', 'location', 'locations', 'deleted',
                                 'deleted_at', 'direct_url', 'self', 'file',
                                 'schema'})
RESERVED_PREFIX = 'os_glance'
FORMAT_LOCKED_AFTER = ('queued', 'importing')
MAX_INT32 = 2 ** 31 - 1


class InvalidStatusTransition(exception.GlanceError):
    message = 'Image status transition from %(old)s to %(new)s is not allowed'


def is_reserved(name):
    return name in RESERVED_ATTRIBUTES or name.startswith(RESERVED_PREFIX)


class Image:
    """An image's metadata; data lives in stores, named by ``locations``.

    ``locations`` is a list of ``{'id', 'url', 'metadata', 'status'}``
    dicts (``id`` is None until saved).
    """

    def __init__(self, image_id, status, created_at, updated_at, name=None,
                 visibility='shared', protected=False, os_hidden=False,
                 min_disk=0, min_ram=0, owner=None, disk_format=None,
                 container_format=None, size=None, virtual_size=None,
                 checksum=None, os_hash_algo=None, os_hash_value=None,
                 locations=None, extra_properties=None, tags=None,
                 member=None):
        self.image_id = image_id
        self._status = status
        self.created_at = created_at
        self.updated_at = updated_at
        self.name = name
        self.visibility = visibility
        self.protected = protected
        self.os_hidden = os_hidden
        self.min_disk = min_disk
        self.min_ram = min_ram
        self.owner = owner
        self._disk_format = disk_format
        self._container_format = container_format
        self.size = size
        self.virtual_size = virtual_size
        self.checksum = checksum
        self.os_hash_algo = os_hash_algo
        self.os_hash_value = os_hash_value
        self.locations = list(locations or [])
        self.extra_properties = dict(extra_properties or {})
        self.tags = set(tags or ())
        self.member = member

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, new):
        if new == self._status:
            return
        if new not in STATUS_TRANSITIONS.get(self._status, ()):
            raise InvalidStatusTransition(old=self._status, new=new)
        if (new in STATUSES_NEEDING_FORMATS and self._status != 'saving'
                and not (self.disk_format and self.container_format)):
            raise exception.Invalid(
                'Properties disk_format, container_format must be set prior '
                'to saving data.')
        if new == 'queued':
            self.size = self.virtual_size = None
        self._status = new

    def _set_format(self, attribute, value):
        if getattr(self, attribute) != value and (
                self._status not in FORMAT_LOCKED_AFTER):
            raise exception.Forbidden(
                'Attribute %s can be only replaced for a queued image.'
                % attribute.lstrip('_'))
        setattr(self, attribute, value)

    disk_format = property(lambda self: self._disk_format,
                           lambda self, v: self._set_format('_disk_format', v))
    container_format = property(
        lambda self: self._container_format,
        lambda self, v: self._set_format('_container_format', v))

    @property
    def active_locations(self):
        return [loc for loc in self.locations if loc['status'] == 'active']

    def delete(self, delayed_delete):
        """Mark the image deleted, or pending_delete when data must wait for
        the scrubber."""
        if self.protected:
            raise exception.Forbidden(
                'Image %s is protected and cannot be deleted.' % self.image_id)
        if delayed_delete and self.active_locations:
            self.status = 'pending_delete'
        else:
            self.status = 'deleted'

    def deactivate(self):
        if self._status == 'deactivated':
            return
        if self._status != 'active':
            raise exception.Forbidden(
                "Not allowed to deactivate image in status '%s'"
                % self._status)
        self.status = 'deactivated'

    def reactivate(self):
        if self._status == 'active':
            return
        if self._status != 'deactivated':
            raise exception.Forbidden(
                "Not allowed to reactivate image in status '%s'"
                % self._status)
        self.status = 'active'


class ImageFactory:
    """New images, refusing attributes a client may not choose."""

    def new_image(self, owner, image_id=None, extra_properties=None,
                  tags=None, **attributes):
        for name in attributes:
            if name in READONLY_ATTRIBUTES:
                raise exception.Forbidden("Attribute '%s' is read-only."
                                          % name)
            if is_reserved(name):
                raise exception.Forbidden("Attribute '%s' is reserved."
                                          % name)
        for name in extra_properties or {}:
            if is_reserved(name):
                raise exception.Forbidden("Attribute '%s' is reserved."
                                          % name)
        now = utcnow()
        return Image(image_id=image_id or str(uuid.uuid4()), status='queued',
                     created_at=now, updated_at=now, owner=owner,
                     extra_properties=extra_properties, tags=tags,
                     **attributes)


class ImageMember:
    """A project an image is shared with, and what it said about it."""

    def __init__(self, image_id, member_id, status='pending',
                 created_at=None, updated_at=None, member_row_id=None):
        self.image_id = image_id
        self.member_id = member_id
        self._status = status
        self.created_at = created_at or utcnow()
        self.updated_at = updated_at or self.created_at
        self.member_row_id = member_row_id

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, new):
        if new not in MEMBER_STATUSES:
            raise exception.Invalid('Status must be one of %s.'
                                    % ', '.join(MEMBER_STATUSES))
        self._status = new


def new_member(image, member_id):
    """Sharing is only for images whose visibility is 'shared'."""
    if image.visibility != 'shared':
        raise exception.Forbidden('Only shared images have members.')
    return ImageMember(image.image_id, member_id)


class MemberNotFound(exception.NotFound):
    message = 'Member %(member)s not found for image %(image)s.'


class MemberExists(exception.Duplicate):
    message = 'Member %(member)s already exists for image %(image)s.'


# Task types and how a task's status may move (upstream's).
TASK_TYPES = ('import', 'api_image_import', 'location_import')
TASK_TRANSITIONS = {
    'pending': {'processing', 'failure'},
    'processing': {'success', 'failure'},
    'success': set(),
    'failure': set(),
}


class Task:
    """Work done in the background for a request: its input, and in the
    end its result or the reason it failed. A finished task expires
    ``time_to_live`` after it finished."""

    def __init__(self, task_id, task_type, status, owner, task_input,
                 created_at, updated_at, result=None, message='',
                 image_id=None, user_id=None, request_id=None,
                 expires_at=None):
        self.task_id = task_id
        self.type = task_type
        self._status = status
        self.owner = owner
        self.task_input = task_input
        self.result = result
        self.message = message
        self.image_id = image_id
        self.user_id = user_id
        self.request_id = request_id
        self.created_at = created_at
        self.updated_at = updated_at
        self.expires_at = expires_at

    @property
    def status(self):
        return self._status

    def _move(self, new, time_to_live=None):
        if new not in TASK_TRANSITIONS[self._status]:
            raise exception.Conflict('Task %s cannot go from %s to %s.'
                                     % (self.task_id, self._status, new))
        self._status = new
        if time_to_live is not None:
            self.expires_at = utcnow() + time_to_live

    def begin_processing(self):
        self._move('processing')

    def succeed(self, result, time_to_live):
        self.result = result
        self._move('success', time_to_live)

    def fail(self, message, time_to_live):
        self.message = str(message)
        self._move('failure', time_to_live)


def new_task(context, task_type, task_input, image_id=None):
    """A pending task of ``context``'s project."""
    if task_type not in TASK_TYPES:
        raise exception.Invalid('Invalid task type %s; it must be one of %s.'
                                % (task_type, ', '.join(TASK_TYPES)))
    now = utcnow()
    return Task(str(uuid.uuid4()), task_type, 'pending', context.project_id,
                task_input, now, now, image_id=image_id,
                user_id=context.user_id, request_id=context.request_id)
