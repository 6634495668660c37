"""Repositories: domain objects in, change sets for the DB API out."""

from glance.common.utils import utcnow
from glance.db import api as db_api
from glance import domain

# Domain attribute -> images column, where the names differ.
_COLUMN_FOR = {'image_id': 'id', '_disk_format': 'disk_format',
               '_container_format': 'container_format', '_status': 'status'}
SAVED_ATTRIBUTES = ('name', 'visibility', 'protected', 'os_hidden',
                    'min_disk', 'min_ram', 'owner', 'size', 'virtual_size',
                    'checksum', 'os_hash_algo', 'os_hash_value',
                    '_disk_format', '_container_format', '_status')


def image_from_dict(values, context=None):
    base = {k: values[k] for k in domain.BASE_ATTRIBUTES if k != 'id'}
    image = domain.Image(image_id=values['id'],
                         extra_properties=values['properties'],
                         tags=values['tags'], locations=values['locations'],
                         **base)
    if (context is not None and image.visibility == 'shared'
            and image.owner != context.project_id):
        image.member = context.project_id
    return image


def column_values(image):
    """The images row of a domain image, column name -> value."""
    return {_COLUMN_FOR.get(attr, attr): getattr(image, attr)
            for attr in SAVED_ATTRIBUTES}


class ImageRepo:
    """Images as the DB stores them. ``save`` takes an explicit change set;
    computing it from what was read is the distinction layer's job."""

    def __init__(self, context):
        self.context = context

    def get(self, image_id):
        return image_from_dict(db_api.image_get(self.context, image_id),
                               self.context)

    def list(self, **query):
        return [image_from_dict(values, self.context)
                for values in db_api.image_list(self.context, **query)]

    def add(self, image):
        values = column_values(image)
        values['id'] = image.image_id
        db_api.image_create(values, image.extra_properties,
                            sorted(image.tags))
        if image.locations:
            self.apply(image, {'add_locations': image.locations})

    def apply(self, image, changes, from_state=None):
        """Write ``changes`` (keyword arguments of db_api.image_update)."""
        image.updated_at = utcnow()
        values = dict(changes.get('values', {}), updated_at=image.updated_at)
        changes = dict(changes, values=values)
        new_ids = db_api.image_update(image.image_id, from_state=from_state,
                                      **changes)
        for location, new_id in zip(changes.get('add_locations', ()),
                                    new_ids):
            location['id'] = new_id

    def remove(self, image):
        db_api.image_destroy(image.image_id, image.status)


class MemberRepo:
    """The memberships of one image."""

    def __init__(self, image):
        self.image = image

    @staticmethod
    def _member(values):
        return domain.ImageMember(
            values['image_id'], values['member'], values['status'],
            values['created_at'], values['updated_at'], values['id'])

    def list(self):
        return [self._member(v) for v in db_api.member_list(
            self.image.image_id)]

    def get(self, member_id):
        found = db_api.member_list(self.image.image_id, member_id)
        if not found:
            raise domain.MemberNotFound(member=member_id,
                                        image=self.image.image_id)
        return self._member(found[0])

    def add(self, member):
        if db_api.member_list(self.image.image_id, member.member_id):
            raise domain.MemberExists(member=member.member_id,
                                      image=self.image.image_id)
        member.member_row_id = db_api.member_create(
            member.image_id, member.member_id, member.status)

    def save(self, member):
        member.updated_at = db_api.member_update(member.member_row_id,
                                                 member.status)

    def remove(self, member):
        db_api.member_delete(member.member_row_id)


def _task_from_dict(values):
    return domain.Task(
        values['id'], values['type'], values['status'], values['owner'],
        values['input'], values['created_at'], values['updated_at'],
        result=values['result'], message=values['message'] or '',
        image_id=values['image_id'], user_id=values['user_id'],
        request_id=values['request_id'], expires_at=values['expires_at'])


class TaskRepo:
    """Tasks of one context: its project's, or all for an admin."""

    def __init__(self, context):
        self.owner = None if context.is_admin else context.project_id

    def get(self, task_id):
        return _task_from_dict(db_api.task_get(task_id, self.owner))

    def list(self, **query):
        return [_task_from_dict(values)
                for values in db_api.task_list(self.owner, **query)]

    def add(self, task):
        db_api.task_create(
            {'id': task.task_id, 'type': task.type, 'status': task.status,
             'owner': task.owner, 'image_id': task.image_id,
             'user_id': task.user_id, 'request_id': task.request_id,
             'created_at': task.created_at, 'updated_at': task.updated_at},
            {'input': task.task_input, 'result': task.result,
             'message': task.message})

    def save(self, task, from_status):
        """Write the task's new status and outcome, if it is still
        ``from_status`` (Conflict otherwise)."""
        task.updated_at = utcnow()
        db_api.task_update(
            task.task_id, from_status,
            {'status': task.status, 'expires_at': task.expires_at,
             'updated_at': task.updated_at},
            {'result': task.result, 'message': task.message})

    def of_image(self, image_id):
        """The image's unexpired tasks, as the database holds them."""
        return db_api.tasks_of_image(image_id, self.owner)
