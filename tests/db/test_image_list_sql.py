"""The image list query on every database: filters (columns, ranges,
extra properties, tags), visibility, sorting on several keys (a boolean
among them) and marker pagination give the same pages on SQLite, MariaDB
and PostgreSQL, computed here independently in Python."""

import uuid

import pytest

from glance import context as glance_context
from glance.common import exception
from glance.db import api as db_api

ADMIN = glance_context.RequestContext(
    project_id='p1', roles=['admin', 'member', 'reader'], is_admin=True)
USER = glance_context.RequestContext(project_id='p1', roles=['member'])


@pytest.fixture
def images(glance_db):
    """Images of a set of their own (``set`` property), as dicts of what
    the assertions sort and filter on."""
    image_set = uuid.uuid4().hex
    made = []
    for n in range(9):
        values = {'id': str(uuid.uuid4()), 'name': f'image-{(n * 5) % 9}',
                  'status': 'active', 'visibility': (
                      'public' if n % 3 == 0 else 'private'),
                  'owner': 'p1' if n % 2 else 'p2', 'protected': n % 4 == 0,
                  'os_hidden': False, 'size': 100 * n,
                  'disk_format': 'raw', 'container_format': 'bare',
                  'min_disk': 0, 'min_ram': 0}
        tags = ['even'] if n % 2 == 0 else []
        db_api.image_create(values, {'set': image_set}, tags)
        made.append(dict(values, tags=tags))
    return image_set, made


def walk(context, page_size, **list_args):
    """Every page from the first until a short one; the ids in order."""
    ids, marker = [], None
    while True:
        page = db_api.image_list(context, limit=page_size, marker=marker,
                                 **list_args)
        ids += [image['id'] for image in page]
        if len(page) < page_size:
            return ids
        marker = page[-1]['id']


def test_pages_follow_several_sort_keys_across_markers(images):
    image_set, made = images
    found = walk(ADMIN, 2, filters={'set': ('eq', image_set)},
                 sort_keys=('protected', 'name'), sort_dirs=('desc', 'asc'))
    expected = sorted(made, key=lambda i: (not i['protected'], i['name']))
    assert found == [i['id'] for i in expected]


def test_filters_combine_columns_ranges_properties_and_tags(images):
    image_set, made = images
    found = walk(ADMIN, 3, filters={'set': ('eq', image_set),
                                    'size_min': ('eq', 200),
                                    'disk_format': ('eq', 'raw')},
                 tags=['even'], sort_keys=('size',), sort_dirs=('asc',))
    assert found == [i['id'] for i in sorted(made, key=lambda i: i['size'])
                     if i['size'] >= 200 and 'even' in i['tags']]


def test_a_project_sees_its_own_and_public_images_only(images):
    image_set, made = images
    found = walk(USER, 4, filters={'set': ('eq', image_set)},
                 sort_keys=('name',), sort_dirs=('desc',))
    visible = [i for i in made
               if i['owner'] == 'p1' or i['visibility'] == 'public']
    assert found == [i['id'] for i in sorted(visible, key=lambda i: i['name'],
                                             reverse=True)]


def test_a_marker_the_caller_cannot_see_is_not_found(images):
    image_set, made = images
    hidden = next(i for i in made
                  if i['owner'] == 'p2' and i['visibility'] == 'private')
    with pytest.raises(exception.ImageNotFound):
        db_api.image_list(USER, marker=hidden['id'], limit=2,
                          filters={'set': ('eq', image_set)})
