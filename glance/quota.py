"""The quota layer: counts an image may not exceed, and bytes per owner."""

import re

from oslo_config import cfg

from glance.common import exception
from glance import domain

CONF = cfg.CONF

_UNITS = ('B', 'KB', 'MB', 'GB', 'TB')
_SIZE = re.compile(r'^(\d+)\s*(B|KB|MB|GB|TB)?$')


def _check_count(what, count, limit):
    if 0 <= limit < count:
        raise exception.LimitExceeded(
            'The limit has been exceeded on the number of allowed image %s. '
            'Attempted: %d, Maximum: %d' % (what, count, limit))


def _counted_properties(image):
    return [k for k in image.extra_properties
            if not k.startswith(domain.RESERVED_PREFIX)]


def check_image(image, changes=None):
    """Raise LimitExceeded if the image (after ``changes``) has too many
    properties, tags or locations. On a save only what grows is checked, so
    an image over a lowered quota can still be edited in other ways."""
    grows = changes is None or changes.get('set_properties')
    if grows:
        _check_count('properties', len(_counted_properties(image)),
                     CONF.image_property_quota)
    if changes is None or changes.get('add_tags'):
        _check_count('tags', len(image.tags), CONF.image_tag_quota)
    if changes is None or changes.get('add_locations'):
        _check_count('locations', len(image.active_locations),
                     CONF.image_location_quota)


def check_members(count):
    _check_count('members', count, CONF.image_member_quota)


def storage_quota():
    """``user_storage_quota`` in bytes (1024-based units); 0 = unlimited."""
    match = _SIZE.match(CONF.user_storage_quota.strip().upper())
    if match is None:
        raise exception.Invalid('user_storage_quota %r is not a size such '
                                'as 10GB' % CONF.user_storage_quota)
    number, unit = match.groups()
    return int(number) * 1024 ** _UNITS.index(unit or 'B')


def storage_room(used):
    """Bytes the owner may still store, or None when unlimited."""
    quota = storage_quota()
    if quota == 0:
        return None
    if used >= quota:
        raise exception.LimitExceeded(
            'Denying attempt to upload image because it exceeds the quota: '
            'The size of the data %d will exceed the limit. %d bytes '
            'remaining.' % (used, max(quota - used, 0)))
    return quota - used


class ImageRepoProxy:

    def __init__(self, repo):
        self.repo = repo

    def __getattr__(self, name):
        return getattr(self.repo, name)

    def add(self, image):
        check_image(image)
        self.repo.add(image)

    def apply(self, image, changes, from_state=None):
        check_image(image, changes)
        # Checked again in the database: another request may have added
        # properties or tags since this image was read.
        changes = dict(changes)
        if changes.get('set_properties') and CONF.image_property_quota >= 0:
            changes['max_properties'] = CONF.image_property_quota
        if changes.get('add_tags') and CONF.image_tag_quota >= 0:
            changes['max_tags'] = CONF.image_tag_quota
        self.repo.apply(image, changes, from_state)
