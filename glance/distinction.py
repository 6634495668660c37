"""The distinction layer: a save writes only what changed since the read.

``get`` (and ``list``/``add``) keep a snapshot of each image handed out;
``save`` compares the image with it and passes the layers below a change
set: changed columns, properties set or removed, tags added or removed,
locations added, dropped or given new metadata. Two requests changing
different properties of one image therefore never undo each other.
"""

import copy
import weakref

from glance.db import repo as db_repo


def _snapshot(image):
    return {'columns': db_repo.column_values(image),
            'properties': dict(image.extra_properties),
            'tags': set(image.tags),
            'locations': {loc['id']: copy.deepcopy(loc)
                          for loc in image.locations
                          if loc['id'] is not None}}


def change_set(before, image):
    """Keyword arguments for ``db.api.image_update``; empty if nothing
    changed."""
    now = _snapshot(image)
    changes = {}
    values = {column: value for column, value in now['columns'].items()
              if before['columns'][column] != value}
    old_props, new_props = before['properties'], now['properties']
    set_props = {k: v for k, v in new_props.items()
                 if k not in old_props or old_props[k] != v}
    for key, value in (('values', values),
                       ('set_properties', set_props),
                       ('delete_properties',
                        sorted(set(old_props) - set(new_props))),
                       ('add_tags', sorted(now['tags'] - before['tags'])),
                       ('remove_tags', sorted(before['tags'] - now['tags'])),
                       ('add_locations', [loc for loc in image.locations
                                          if loc['id'] is None]),
                       ('delete_locations',
                        [loc for loc_id, loc in before['locations'].items()
                         if loc_id not in now['locations']]),
                       ('update_locations',
                        [{'id': loc_id, 'metadata': loc['metadata']}
                         for loc_id, loc in now['locations'].items()
                         if loc_id in before['locations'] and loc['metadata']
                         != before['locations'][loc_id]['metadata']])):
        if value:
            changes[key] = value
    return changes


class ImageRepoProxy:

    def __init__(self, repo):
        self.repo = repo
        self._snapshots = weakref.WeakKeyDictionary()

    def _remember(self, image):
        self._snapshots[image] = _snapshot(image)
        return image

    def get(self, image_id):
        return self._remember(self.repo.get(image_id))

    def list(self, **query):
        return [self._remember(image) for image in self.repo.list(**query)]

    def add(self, image):
        self.repo.add(image)
        self._remember(image)

    def save(self, image, from_state=None):
        before = self._snapshots[image]
        changes = change_set(before, image)
        formats = {'disk_format', 'container_format'}
        if from_state is None and formats & set(changes.get('values', ())):
            # Formats may change only while queued: hold the image to the
            # status that permitted the change.
            from_state = before['columns']['status']
        # A status guard is checked even when nothing changed: an image
        # another request already moved to the wanted status (a no-op for
        # this copy) must still fail the compare-and-set.
        if changes or from_state is not None:
            self.repo.apply(image, changes, from_state)
        self._remember(image)

    def remove(self, image):
        self.repo.remove(image)
