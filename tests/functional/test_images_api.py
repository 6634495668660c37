"""Images API v2 over raw HTTP: create, show, list, update, delete, schemas,
discovery and routing, each checked against upstream Glance's answers
(reference glance-compat.md §3).

Identity: see tests/functional/helpers.py (``Api``). Each test works in
projects of its own so that tests don't see each other's images.
"""

import datetime
import json
import os
import time

import pytest

from tests.functional import helpers
from tests.functional.helpers import error_text
from tests.functional.helpers import PATCH_V20, PATCH_V21, Api

server = helpers.server
quota_glance = helpers.shared_server('quota_glance', helpers.QUOTA_OPTIONS)
config_glance = helpers.shared_server('config_glance',
                                      helpers.CONFIG_OPTIONS)


# ---------------------------------------------------------------- create


def test_create_answers_201_with_location_and_every_base_field(owner):
    """Create: 201, absolute Location, all base keys with nulls, links,
    Z timestamps, extra properties as top-level strings."""
    resp = owner.post('/v2/images', json={
        'name': 'cirros', 'disk_format': 'qcow2', 'container_format': 'bare',
        'min_ram': 64, 'os_distro': 'cirros', 'tags': ['a', 'b']})
    assert resp.status_code == 201, error_text(resp)
    image = resp.json()
    assert resp.headers['Location'].startswith('http')
    assert resp.headers['Location'].endswith(f"/v2/images/{image['id']}")
    assert resp.headers['Content-Type'].startswith('application/json')
    for field in helpers.BASE_FIELDS:
        assert field in image, field
    assert helpers.UUID.match(image['id'])
    assert image['name'] == 'cirros'
    assert image['status'] == 'queued'
    assert image['visibility'] == 'shared'
    assert image['protected'] is False
    assert image['os_hidden'] is False
    assert image['owner'] == owner.project
    assert image['min_ram'] == 64
    assert image['min_disk'] == 0
    assert image['disk_format'] == 'qcow2'
    assert image['container_format'] == 'bare'
    for null_field in ('checksum', 'os_hash_algo', 'os_hash_value', 'size',
                       'virtual_size'):
        assert image[null_field] is None, null_field
    assert sorted(image['tags']) == ['a', 'b']
    assert image['os_distro'] == 'cirros'
    assert image['self'] == f"/v2/images/{image['id']}"
    assert image['file'] == f"/v2/images/{image['id']}/file"
    assert image['schema'] == '/v2/schemas/image'
    assert helpers.TIMESTAMP.match(image['created_at']), image['created_at']
    assert helpers.TIMESTAMP.match(image['updated_at']), image['updated_at']
    # Not shown without the options that enable them.
    assert 'direct_url' not in image
    assert 'locations' not in image
    # The same representation on show.
    shown = owner.show(image['id'])
    assert shown == image


def test_create_with_empty_object_gives_named_null_image(owner):
    image = owner.create()
    assert image['name'] is None
    assert image['disk_format'] is None
    assert image['container_format'] is None
    assert image['tags'] == []


def test_create_rows_in_database(server, owner):
    """The image, its properties and tags are rows of upstream's schema."""
    image = owner.create(name='rows', foo='bar', tags=['t1'])
    row = helpers.image_row(server, image['id'])
    assert row['name'] == 'rows'
    assert row['status'] == 'queued'
    assert row['owner'] == owner.project
    assert row['visibility'] == 'shared'
    assert row['deleted'] in (0, False)
    props = helpers.db_rows(
        server, 'SELECT name, value FROM image_properties '
        'WHERE image_id = ? AND deleted = 0', image['id'])
    assert props == [{'name': 'foo', 'value': 'bar'}]
    tags = helpers.db_rows(
        server, 'SELECT value FROM image_tags WHERE image_id = ? '
        'AND deleted = 0', image['id'])
    assert tags == [{'value': 't1'}]


def test_create_with_given_id_then_duplicate_is_409(owner):
    image_id = f'8f6e9a5c-4d52-4d5e-9b1b-{helpers.new_project()[-12:]}'
    image = owner.create(id=image_id, name='given id')
    assert image['id'] == image_id
    resp = owner.post('/v2/images', json={'id': image_id})
    assert resp.status_code == 409, error_text(resp)


def test_create_with_id_of_deleted_image_is_409(owner):
    """Ids are never reused, even of (soft-)deleted images."""
    image = owner.create(name='to delete')
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    resp = owner.post('/v2/images', json={'id': image['id']})
    assert resp.status_code == 409, error_text(resp)


@pytest.mark.parametrize('attribute, value', [
    ('status', 'active'), ('checksum', 'a' * 32), ('size', 3),
    ('virtual_size', 3), ('created_at', '2020-01-01T00:00:00Z'),
    ('updated_at', '2020-01-01T00:00:00Z'), ('direct_url', 'file:///x'),
    ('self', '/v2/images/x'), ('file', '/v2/images/x/file'),
    ('schema', '/v2/schemas/image'),
])
def test_create_with_read_only_attribute_is_403(owner, attribute, value):
    resp = owner.post('/v2/images', json={'name': 'ro', attribute: value})
    assert resp.status_code == 403, error_text(resp)
    assert 'read-only' in resp.text


@pytest.mark.parametrize('attribute, value', [
    ('location', 'file:///x'), ('locations', []), ('deleted', 'true'),
    ('deleted_at', '2020-01-01T00:00:00Z'), ('os_glance_foo', 'x'),
])
def test_create_with_reserved_attribute_is_403(owner, attribute, value):
    resp = owner.post('/v2/images', json={'name': 'rsv', attribute: value})
    assert resp.status_code == 403, error_text(resp)
    assert 'reserved' in resp.text


@pytest.mark.parametrize('body', [
    {'foo': 1},                                  # extra property not string
    {'foo': None},
    {'foo': ['a']},
    {'visibility': 'everyone'},
    {'disk_format': 'floppy'},
    {'container_format': 'crate'},
    {'id': 'not-a-uuid'},
    {'name': 'x' * 256},
    {'name': {'a': [1]}},
    {'name': 'smile \U0001F600'},                # 4-byte UTF-8
    {'foo': 'smile \U0001F600'},
    {'tags': ['x' * 256]},
    {'tags': 'a,b'},
    {'tags': ['\U0001F600']},
    {'protected': 'yes'},
    {'os_hidden': 'no'},
    {'min_ram': -1},
    {'min_disk': 2 ** 31},
    {'min_ram': '64'},
    {'x' * 256: 'long key'},
], ids=lambda body: json.dumps(body)[:40])
def test_create_violating_schema_is_400(owner, body):
    resp = owner.post('/v2/images', json=body)
    assert resp.status_code == 400, error_text(resp)


@pytest.mark.parametrize('raw', ['{"name": ', '', 'null', '"image"', '[]',
                                 '[{"name": "x"}]', '42'])
def test_create_with_malformed_or_non_object_body_is_400(owner, raw):
    """Upstream answers 500 to a JSON array here; a drop-in must say 400."""
    resp = owner.post('/v2/images', data=raw,
                      headers={'Content-Type': 'application/json'})
    assert resp.status_code == 400, error_text(resp)


def test_create_for_another_owner_needs_admin(admin, owner):
    resp = owner.post('/v2/images', json={'owner': 'someone-else'})
    assert resp.status_code == 403, error_text(resp)
    image = admin.create(owner='someone-else', name='admin made')
    assert image['owner'] == 'someone-else'


def test_create_without_identity_acts_as_admin_of_default(admin):
    """The no-auth default: no identity headers = admin of 'default'."""
    if getattr(admin.server, 'oracle', False):
        pytest.skip('upstream has no such no-auth behaviour')
    image = admin.create(name='anonymous', visibility='public')
    assert image['owner'] == 'default'
    assert image['visibility'] == 'public'


def test_public_needs_admin_community_does_not(admin, owner):
    resp = owner.post('/v2/images', json={'visibility': 'public'})
    assert resp.status_code == 403, error_text(resp)
    assert owner.create(visibility='community')['visibility'] == 'community'
    assert owner.create(visibility='private')['visibility'] == 'private'
    assert admin.create(visibility='public')['visibility'] == 'public'


def test_reader_cannot_create(server):
    reader = Api(server, helpers.new_project(), roles='reader')
    resp = reader.post('/v2/images', json={'name': 'r'})
    assert resp.status_code == 403, error_text(resp)
    assert reader.get('/v2/images').status_code == 200


# ------------------------------------------------------------------ show


def test_show_unknown_or_malformed_id_is_404(owner):
    for image_id in ('00000000-0000-0000-0000-000000000000', 'not-a-uuid',
                     'x' * 300):
        resp = owner.get(f'/v2/images/{image_id}')
        assert resp.status_code == 404, (image_id, error_text(resp))


@pytest.mark.parametrize('visibility, other_sees', [
    ('private', False), ('shared', False), ('community', True),
])
def test_show_visibility_for_another_project(owner, other, visibility,
                                             other_sees):
    image = owner.create(visibility=visibility)
    resp = other.get(f"/v2/images/{image['id']}")
    assert resp.status_code == (200 if other_sees else 404), error_text(resp)


def test_show_public_and_admin_sees_everything(admin, owner, other):
    public = admin.create(visibility='public', name='for all')
    assert other.show(public['id'])['name'] == 'for all'
    private = owner.create(visibility='private')
    assert admin.show(private['id'])['owner'] == owner.project


def test_hidden_image_is_shown_but_not_listed(owner):
    image = owner.create(os_hidden=True, name='hidden')
    assert owner.show(image['id'])['os_hidden'] is True
    assert image['id'] not in owner.list_ids(owner=owner.project)
    assert owner.list_ids(owner=owner.project, os_hidden='true') == [
        image['id']]


# ------------------------------------------------------------------ list


@pytest.fixture
def listed(owner):
    """Three images of ``owner`` with a property unique to the test."""
    suite = helpers.new_project()
    images = {}
    for name, disk, protected, tags in [('alpha', 'raw', True, ['t1', 't2']),
                                        ('beta', 'qcow2', False, ['t1']),
                                        ('gamma', 'iso', False, [])]:
        images[name] = owner.create(
            name=name, disk_format=disk, container_format='bare',
            protected=protected, tags=tags, suite=suite, letter=name[0])
    return suite, images


def names(api, query):
    return sorted(image['name'] for image in api.list(query)['images'])


def test_list_shape(owner, listed):
    suite, images = listed
    body = owner.list(f'?suite={suite}')
    assert set(body) >= {'images', 'first', 'schema'}
    assert body['schema'] == '/v2/schemas/images'
    assert body['first'].startswith('/v2/images')
    assert 'next' not in body
    assert len(body['images']) == 3
    for image in body['images']:
        for field in helpers.BASE_FIELDS:
            assert field in image, field
        assert image['suite'] == suite
        assert image['id'] == images[image['name']]['id']


@pytest.mark.parametrize('filters, expected', [
    ('name=alpha', ['alpha']),
    ('name=eq:beta', ['beta']),
    ('name=in:alpha,gamma', ['alpha', 'gamma']),
    ('name=in:"alpha,beta",gamma', ['gamma']),
    ('name=nothing', []),
    ('disk_format=qcow2', ['beta']),
    ('disk_format=in:raw,iso', ['alpha', 'gamma']),
    ('status=queued', ['alpha', 'beta', 'gamma']),
    ('status=active', []),
    ('status=in:queued,active', ['alpha', 'beta', 'gamma']),
    ('visibility=shared', ['alpha', 'beta', 'gamma']),
    ('visibility=private', []),
    ('visibility=all', ['alpha', 'beta', 'gamma']),
    ('tag=t1', ['alpha', 'beta']),
    ('tag=t1&tag=t2', ['alpha']),
    ('tag=nope', []),
    ('protected=true', ['alpha']),
    ('protected=false', ['beta', 'gamma']),
    ('os_hidden=false', ['alpha', 'beta', 'gamma']),
    ('os_hidden=true', []),
    ('letter=b', ['beta']),
    ('letter=b&name=alpha', []),
    ('min_ram=0', ['alpha', 'beta', 'gamma']),
    ('container_format=bare', ['alpha', 'beta', 'gamma']),
])
def test_list_filters(owner, listed, filters, expected):
    suite, _ = listed
    assert names(owner, f'?suite={suite}&{filters}') == expected


def test_list_filter_by_owner_and_id(owner, other, listed):
    suite, images = listed
    assert names(owner, f'?suite={suite}&owner={owner.project}') == [
        'alpha', 'beta', 'gamma']
    assert names(owner, f'?suite={suite}&owner={other.project}') == []
    ids = '{},{}'.format(images['alpha']['id'], images['gamma']['id'])
    assert names(owner, f'?suite={suite}&id=in:{ids}') == [
        'alpha', 'gamma']
    # Another project sees none of these shared images.
    assert names(other, f'?suite={suite}') == []


def test_list_filter_created_at(owner, listed):
    suite, images = listed
    created = min(image['created_at'] for image in images.values())
    before = (datetime.datetime.strptime(created, '%Y-%m-%dT%H:%M:%SZ')
              - datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    later = (datetime.datetime.now(datetime.UTC)
             + datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert len(names(owner, f'?suite={suite}&created_at=gte:{before}')) == 3
    assert names(owner, f'?suite={suite}&created_at=lt:{before}') == []
    assert len(names(owner, f'?suite={suite}&created_at=lt:{later}')) == 3
    assert names(owner, f'?suite={suite}&created_at=gt:{later}') == []
    assert len(names(owner, f'?suite={suite}&updated_at=lte:{later}')) == 3


def test_list_filter_size_range(owner):
    suite = helpers.new_project()
    for size in (10, 100, 1000):
        owner.create_active(data=b'x' * size, name=f's{size}', suite=suite)
    assert names(owner, f'?suite={suite}&size_min=100') == ['s100', 's1000']
    assert names(owner, f'?suite={suite}&size_max=100') == ['s10', 's100']
    assert names(owner, f'?suite={suite}&size_min=11&size_max=999') == [
        's100']
    assert names(owner, f'?suite={suite}&size_max=-1') == []


@pytest.mark.parametrize('query', [
    'name=gt:a',               # operator not allowed on name
    'name=like:a',
    'created_at=bogus',
    'created_at=gte:not-a-date',
    'created_at=foo:2020-01-01T00:00:00Z',
    'updated_at=2020-13-45',
    'size_min=x',
    'size_max=1.5.3',
    'protected=maybe',
    'os_hidden=maybe',
    'visibility=everyone',
    'member_status=bogus',
    'sort_key=bogus',
    'sort_key=name&sort_dir=sideways',
    'sort_dir=up',
    'sort=name:up',
    'sort=bogus:asc',
    'sort=name:asc&sort_key=name',
    'sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc',
    'limit=-1',
    'limit=x',
    'limit=1.5',
    'marker=not-an-image',
    'marker=00000000-0000-0000-0000-000000000000',
    'changes-since=2020-01-01T00:00:00Z',
])
def test_list_with_bad_parameter_is_400(owner, query):
    resp = owner.get('/v2/images?' + query)
    assert resp.status_code == 400, (query, error_text(resp))


def test_list_changes_since_is_gone(owner):
    resp = owner.get('/v2/images?changes-since=2020-01-01T00:00:00Z')
    assert resp.status_code == 400
    assert 'changes-since' in resp.text


@pytest.mark.parametrize('query, expected', [
    ('sort_key=name&sort_dir=asc', ['alpha', 'beta', 'gamma']),
    ('sort_key=name&sort_dir=desc', ['gamma', 'beta', 'alpha']),
    ('sort_key=name', ['gamma', 'beta', 'alpha']),          # default desc
    ('sort=name:asc', ['alpha', 'beta', 'gamma']),
    ('sort=name', ['gamma', 'beta', 'alpha']),               # default desc
    ('sort=disk_format:asc', ['gamma', 'beta', 'alpha']),    # iso<qcow2<raw
    ('sort=status:asc,name:desc', ['gamma', 'beta', 'alpha']),
    ('sort_key=status&sort_key=name&sort_dir=asc',
     ['alpha', 'beta', 'gamma']),
    ('sort_key=status&sort_key=name&sort_dir=asc&sort_dir=desc',
     ['gamma', 'beta', 'alpha']),
])
def test_list_sorting(owner, listed, query, expected):
    suite, _ = listed
    got = [image['name'] for image in owner.list(
        f'?suite={suite}&{query}')['images']]
    assert got == expected


def test_list_default_sort_is_created_at_desc(owner):
    suite = helpers.new_project()
    for index in range(3):
        owner.create(name=f'n{index}', suite=suite)
    images = owner.list(f'?suite={suite}')['images']
    stamps = [image['created_at'] for image in images]
    assert stamps == sorted(stamps, reverse=True)
    for key in ('id', 'size', 'updated_at', 'created_at', 'container_format'):
        for direction in ('asc', 'desc'):
            resp = owner.get(f'/v2/images?suite={suite}&sort_key={key}'
                             f'&sort_dir={direction}')
            assert resp.status_code == 200, (key, error_text(resp))
            assert len(resp.json()['images']) == 3


def test_list_pagination_follows_next(owner):
    """limit + marker: following ``next`` yields every image once, in
    order; the last (short) page has no ``next``."""
    suite = helpers.new_project()
    created = [owner.create(name=f'p{index:02d}', suite=suite)['id']
               for index in range(7)]
    query = f'?suite={suite}&sort_key=name&sort_dir=asc&limit=3'
    first = owner.list(query)
    assert [image['name'] for image in first['images']] == [
        'p00', 'p01', 'p02']
    assert f"marker={first['images'][-1]['id']}" in first['next']
    assert 'marker' not in first['first']
    images = owner.list_all(query)
    assert [image['id'] for image in images] == created
    # Pages are 3, 3, 1: the last one has no next.
    second = owner.get(first['next']).json()
    third = owner.get(second['next']).json()
    assert len(third['images']) == 1
    assert 'next' not in third
    # A marker used directly.
    after = owner.list(query.replace('limit=3', 'limit=2')
                       + f'&marker={created[4]}')
    assert [image['id'] for image in after['images']] == created[5:7]


def test_list_limit_zero_and_huge(owner, listed):
    suite, _ = listed
    assert owner.list(f'?suite={suite}&limit=0')['images'] == []
    assert len(owner.list(f'?suite={suite}&limit=100000000')['images']) == 3


def test_list_marker_of_invisible_image_is_refused(owner, other):
    """The reference says 400; upstream 33 answers 403 "Forbidding
    request, image <id> not visible". Either refuses to page from it."""
    hidden_from_other = owner.create(visibility='private')
    resp = other.get(f"/v2/images?marker={hidden_from_other['id']}")
    assert resp.status_code in (400, 403), error_text(resp)


def test_list_visibility_rules(admin, owner, other):
    """Non-admins see public, own, and (with visibility=community)
    community images; never others' private or shared ones."""
    suite = helpers.new_project()
    mine = {v: owner.create(visibility=v, suite=suite, name=v)
            for v in ('private', 'shared', 'community')}
    admin.create(visibility='public', suite=suite, name='public')
    assert names(owner, f'?suite={suite}') == [
        'community', 'private', 'public', 'shared']
    assert names(other, f'?suite={suite}') == ['public']
    assert names(other, f'?suite={suite}&visibility=community') == [
        'community']
    assert names(other, f'?suite={suite}&visibility=private') == []
    assert names(other, f'?suite={suite}&visibility=all') == [
        'community', 'public']
    assert names(owner, f'?suite={suite}&visibility=private') == [
        'private']
    # Admins see every image but others' community ones by default.
    assert names(admin, f'?suite={suite}') == [
        'private', 'public', 'shared']
    assert names(admin, f'?suite={suite}&visibility=community') == [
        'community']
    assert len(mine) == 3


def test_list_limits_from_config(config_glance):
    """limit_param_default is the page size without limit; api_limit_max
    caps a larger limit (config: 3 and 5)."""
    api = Api(config_glance, helpers.new_project())
    suite = helpers.new_project()
    for index in range(7):
        api.create(name=f'l{index}', suite=suite)
    default = api.list(f'?suite={suite}')
    assert len(default['images']) == 3
    assert 'next' in default
    capped = api.list(f'?suite={suite}&limit=100')
    assert len(capped['images']) == 5
    assert 'next' in capped
    assert len(api.list_all(f'?suite={suite}')) == 7


# ----------------------------------------------------------------- patch


def patch(api, image_id, ops, media_type=PATCH_V21):
    return api.update(image_id, ops, media_type)


@pytest.mark.parametrize('media_type', [PATCH_V21, PATCH_V20])
def test_patch_add_replace_remove(owner, media_type):
    """Both media types: add/replace/remove of extra properties and base
    attributes; the response is the whole image."""
    image = owner.create(name='before', foo='1')

    def op(name, path, value=None):
        if media_type == PATCH_V21:
            entry = {'op': name, 'path': path}
        else:
            entry = {name: path}
        if value is not None:
            entry['value'] = value
        return entry

    resp = patch(owner, image['id'], [
        op('replace', '/name', 'after'),
        op('add', '/bar', 'two'),
        op('replace', '/foo', 'one'),
        op('replace', '/min_disk', 5),
        op('replace', '/tags', ['x', 'y']),
        op('replace', '/visibility', 'private'),
        op('replace', '/protected', True),
        op('replace', '/os_hidden', True),
        op('replace', '/disk_format', 'raw'),
    ], media_type)
    assert resp.status_code == 200, error_text(resp)
    body = resp.json()
    for field in helpers.BASE_FIELDS:
        assert field in body, field
    assert body['name'] == 'after'
    assert body['bar'] == 'two'
    assert body['foo'] == 'one'
    assert body['min_disk'] == 5
    assert sorted(body['tags']) == ['x', 'y']
    assert body['visibility'] == 'private'
    assert body['protected'] is True
    assert body['os_hidden'] is True
    assert body['disk_format'] == 'raw'
    assert helpers.TIMESTAMP.match(body['updated_at'])
    assert owner.show(image['id']) == body

    resp = patch(owner, image['id'], [op('remove', '/foo'),
                                      op('replace', '/protected', False)],
                 media_type)
    assert resp.status_code == 200, error_text(resp)
    assert 'foo' not in resp.json()
    assert 'foo' not in owner.show(image['id'])


def test_patch_remove_soft_deletes_property_row(server, owner):
    image = owner.create(foo='1', keep='2')
    resp = patch(owner, image['id'], [{'op': 'remove', 'path': '/foo'}])
    assert resp.status_code == 200, error_text(resp)
    rows = helpers.db_rows(
        server, 'SELECT name, value, deleted FROM image_properties '
        'WHERE image_id = ? ORDER BY name', image['id'])
    live = [row['name'] for row in rows if not row['deleted']]
    assert live == ['keep']


def test_patch_v21_add_overwrites_but_v20_add_existing_is_409(owner):
    image = owner.create(foo='1')
    resp = patch(owner, image['id'],
                 [{'op': 'add', 'path': '/foo', 'value': '2'}])
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['foo'] == '2'
    resp = patch(owner, image['id'], [{'add': '/foo', 'value': '3'}],
                 PATCH_V20)
    assert resp.status_code == 409, error_text(resp)
    assert owner.show(image['id'])['foo'] == '2'


def test_patch_v20_needs_exactly_one_operation_key(owner):
    image = owner.create()
    for ops in ([{'add': '/a', 'remove': '/b', 'value': '1'}],
                [{'op': 'add', 'path': '/a', 'value': '1'}],
                [{'value': '1'}]):
        resp = patch(owner, image['id'], ops, PATCH_V20)
        assert resp.status_code == 400, (ops, error_text(resp))


def test_patch_replace_or_remove_missing_property_is_409(owner):
    image = owner.create()
    for ops in ([{'op': 'replace', 'path': '/nope', 'value': '1'}],
                [{'op': 'remove', 'path': '/nope'}]):
        resp = patch(owner, image['id'], ops)
        assert resp.status_code == 409, (ops, error_text(resp))


def test_patch_is_all_or_nothing(owner):
    """A failing operation leaves the image unchanged, even the earlier
    operations of the same request."""
    image = owner.create(name='same')
    resp = patch(owner, image['id'], [
        {'op': 'replace', 'path': '/name', 'value': 'changed'},
        {'op': 'add', 'path': '/new', 'value': 'v'},
        {'op': 'replace', 'path': '/nope', 'value': '1'}])
    assert resp.status_code == 409, error_text(resp)
    shown = owner.show(image['id'])
    assert shown['name'] == 'same'
    assert 'new' not in shown


def test_patch_empty_list_changes_nothing(owner):
    image = owner.create(name='same')
    resp = patch(owner, image['id'], [])
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['name'] == 'same'


def test_patch_remove_base_attribute_is_403(owner):
    image = owner.create(name='n')
    for path in ('/name', '/min_ram', '/visibility', '/tags'):
        resp = patch(owner, image['id'], [{'op': 'remove', 'path': path}])
        assert resp.status_code == 403, (path, error_text(resp))


@pytest.mark.parametrize('path', [
    'id', 'status', 'checksum', 'size', 'virtual_size', 'created_at',
    'updated_at', 'direct_url', 'self', 'file', 'schema', 'os_hash_algo',
    'os_hash_value'])
@pytest.mark.parametrize('op', ['replace', 'add'])
def test_patch_read_only_attribute_is_403(owner, path, op):
    image = owner.create()
    resp = patch(owner, image['id'],
                 [{'op': op, 'path': '/' + path, 'value': 'x'}])
    assert resp.status_code == 403, error_text(resp)


@pytest.mark.parametrize('path', ['location', 'deleted', 'deleted_at',
                                  'os_glance_import_task', 'os_glance_x'])
def test_patch_reserved_attribute_is_403(owner, path):
    image = owner.create()
    resp = patch(owner, image['id'],
                 [{'op': 'add', 'path': '/' + path, 'value': 'x'}])
    assert resp.status_code == 403, error_text(resp)


def test_patch_locations_invisible_is_403(owner):
    """Without show_multiple_locations, location changes are forbidden."""
    image = owner.create(disk_format='raw', container_format='bare')
    resp = patch(owner, image['id'], [{
        'op': 'add', 'path': '/locations/-',
        'value': {'url': 'http://example.com/x', 'metadata': {}}}])
    assert resp.status_code == 403, error_text(resp)


@pytest.mark.parametrize('ops', [
    [{'op': 'add', 'path': '/a/b', 'value': '1'}],       # too deep
    [{'op': 'add', 'path': 'a', 'value': '1'}],          # no leading /
    [{'op': 'add', 'path': '/a/', 'value': '1'}],        # trailing /
    [{'op': 'add', 'path': '/~2a', 'value': '1'}],       # bad escape
    [{'op': 'add', 'path': '', 'value': '1'}],
    [{'op': 'add', 'path': 5, 'value': '1'}],            # upstream: 500
    [{'op': 'add', 'path': '/a'}],                       # value missing
    [{'op': 'replace', 'path': '/name'}],
    [{'op': 'move', 'path': '/a', 'value': '1'}],
    [{'op': 'copy', 'path': '/a', 'value': '1'}],
    [{'op': 'test', 'path': '/a', 'value': '1'}],
    [{'op': 'ADD', 'path': '/a', 'value': '1'}],
    [{'path': '/a', 'value': '1'}],                      # op missing
    [{'op': 'add', 'value': '1'}],                       # path missing
    [1],
    ['add'],
    [None],
    [[{'op': 'add', 'path': '/a', 'value': '1'}]],
    {'op': 'add', 'path': '/a', 'value': '1'},           # not a list
    'add',
    None,
    [{'op': 'add', 'path': '/a', 'value': 1}],           # not a string
    [{'op': 'add', 'path': '/a', 'value': None}],
    [{'op': 'add', 'path': '/a', 'value': {'b': 'c'}}],
    [{'op': 'replace', 'path': '/visibility', 'value': 'everyone'}],
    [{'op': 'replace', 'path': '/min_ram', 'value': -5}],
    [{'op': 'replace', 'path': '/min_ram', 'value': '5'}],
    [{'op': 'replace', 'path': '/min_disk', 'value': 2 ** 31}],
    [{'op': 'replace', 'path': '/protected', 'value': 'yes'}],
    [{'op': 'replace', 'path': '/name', 'value': 'x' * 256}],
    [{'op': 'replace', 'path': '/disk_format', 'value': 'floppy'}],
    [{'op': 'replace', 'path': '/tags', 'value': 'a'}],
    [{'op': 'replace', 'path': '/tags', 'value': ['x' * 256]}],
    [{'op': 'add', 'path': '/a', 'value': 'smile \U0001F600'}],
    [{'op': 'replace', 'path': '/name', 'value': '\U0001F600'}],
], ids=lambda ops: json.dumps(ops)[:50])
def test_patch_malformed_or_invalid_is_400(owner, ops):
    image = owner.create(name='n')
    resp = patch(owner, image['id'], ops)
    assert resp.status_code == 400, error_text(resp)
    assert owner.show(image['id'])['name'] == 'n'


def test_patch_broken_json_is_400(owner):
    image = owner.create()
    resp = owner.patch(f"/v2/images/{image['id']}", data='[{"op": "add"',
                       headers={'Content-Type': PATCH_V21})
    assert resp.status_code == 400, error_text(resp)


@pytest.mark.parametrize('content_type', [
    'application/json', 'application/json-patch+json', 'text/plain',
    'application/openstack-images-v2.2-json-patch', None])
def test_patch_wrong_media_type_is_415_with_accept_patch(owner,
                                                         content_type):
    image = owner.create()
    headers = {'Content-Type': content_type} if content_type else {}
    resp = owner.patch(f"/v2/images/{image['id']}", headers=headers,
                       data=json.dumps([{'op': 'add', 'path': '/a',
                                         'value': '1'}]))
    assert resp.status_code == 415, error_text(resp)
    accepted = {value.strip() for value in
                resp.headers['Accept-Patch'].split(',')}
    assert accepted == {PATCH_V20, PATCH_V21}
    assert 'a' not in owner.show(image['id'])


def test_patch_by_member_is_403_by_stranger_is_404(owner, other, server):
    image = owner.create(visibility='shared')
    resp = owner.post(f"/v2/images/{image['id']}/members",
                      json={'member': other.project})
    assert resp.status_code == 200, error_text(resp)
    ops = [{'op': 'add', 'path': '/a', 'value': '1'}]
    assert patch(other, image['id'], ops).status_code == 403
    stranger = Api(server, helpers.new_project())
    assert patch(stranger, image['id'], ops).status_code == 404
    private = owner.create(visibility='private')
    assert patch(other, private['id'], ops).status_code == 404


def test_patch_owner_needs_admin_publicize_needs_admin(admin, owner):
    image = owner.create()
    resp = patch(owner, image['id'],
                 [{'op': 'replace', 'path': '/owner', 'value': 'another'}])
    assert resp.status_code == 403, error_text(resp)
    resp = patch(owner, image['id'],
                 [{'op': 'replace', 'path': '/visibility', 'value': 'public'}])
    assert resp.status_code == 403, error_text(resp)
    resp = patch(owner, image['id'], [
        {'op': 'replace', 'path': '/visibility', 'value': 'community'}])
    assert resp.status_code == 200, error_text(resp)
    resp = patch(admin, image['id'], [
        {'op': 'replace', 'path': '/visibility', 'value': 'public'},
        {'op': 'replace', 'path': '/owner', 'value': 'another'}])
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['owner'] == 'another'
    assert resp.json()['visibility'] == 'public'


def test_patch_formats_only_while_queued(owner):
    image = owner.create_active(data=b'abc')
    for path, value in (('/disk_format', 'qcow2'),
                        ('/container_format', 'ovf')):
        resp = patch(owner, image['id'],
                     [{'op': 'replace', 'path': path, 'value': value}])
        assert resp.status_code == 403, (path, error_text(resp))
    # Other attributes of an active image may change.
    resp = patch(owner, image['id'],
                 [{'op': 'replace', 'path': '/name', 'value': 'renamed'}])
    assert resp.status_code == 200, error_text(resp)


def test_patch_escaped_pointer(owner):
    """``~1`` and ``~0`` in a path are ``/`` and ``~`` in the key."""
    image = owner.create()
    resp = patch(owner, image['id'],
                 [{'op': 'add', 'path': '/a~1b~0c', 'value': 'v'}])
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['a/b~c'] == 'v'


def test_patch_deleted_or_unknown_image_is_404(owner):
    image = owner.create()
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    ops = [{'op': 'add', 'path': '/a', 'value': '1'}]
    assert patch(owner, image['id'], ops).status_code == 404
    assert patch(owner, 'not-a-uuid', ops).status_code == 404


# ---------------------------------------------------------------- delete


def test_delete_then_404(server, owner):
    image = owner.create()
    resp = owner.delete(f"/v2/images/{image['id']}")
    assert resp.status_code == 204, error_text(resp)
    assert resp.content == b''
    assert owner.get(f"/v2/images/{image['id']}").status_code == 404
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 404
    assert image['id'] not in owner.list_ids(owner=owner.project)
    row = helpers.image_row(server, image['id'])
    assert row['status'] == 'deleted'
    assert row['deleted'] in (1, True)
    assert row['deleted_at'] is not None


def test_delete_active_image_removes_its_file(server, owner):
    image = owner.create_active(data=b'to be deleted')
    locations = helpers.db_rows(
        server, 'SELECT value FROM image_locations WHERE image_id = ?',
        image['id'])
    assert len(locations) == 1
    path = locations[0]['value'][len('file://'):]
    with open(path, 'rb') as f:
        assert f.read() == b'to be deleted'
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    assert image['id'] not in helpers.stored_files(server)
    assert not os.path.exists(path)
    rows = helpers.db_rows(
        server, 'SELECT status, deleted FROM image_locations '
        'WHERE image_id = ?', image['id'])
    assert rows == [{'status': 'deleted', 'deleted': 1}]


def test_delete_protected_is_403(owner):
    image = owner.create(protected=True)
    resp = owner.delete(f"/v2/images/{image['id']}")
    assert resp.status_code == 403, error_text(resp)
    assert owner.show(image['id'])['status'] == 'queued'
    resp = patch(owner, image['id'],
                 [{'op': 'replace', 'path': '/protected', 'value': False}])
    assert resp.status_code == 200
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204


def test_delete_by_others(owner, other, server):
    shared = owner.create(visibility='shared')
    owner.post(f"/v2/images/{shared['id']}/members",
               json={'member': other.project})
    assert other.delete(f"/v2/images/{shared['id']}").status_code == 403
    private = owner.create(visibility='private')
    assert other.delete(f"/v2/images/{private['id']}").status_code == 404
    community = owner.create(visibility='community')
    assert other.delete(f"/v2/images/{community['id']}").status_code == 403
    assert owner.show(shared['id'])['status'] == 'queued'
    assert owner.delete('/v2/images/not-a-uuid').status_code == 404


def test_delayed_delete_keeps_data_for_the_scrubber(config_glance):
    """delayed_delete: an image with data becomes pending_delete (404 on
    the API, file kept); one without data is deleted at once."""
    api = Api(config_glance, helpers.new_project())
    image = api.create_active(data=b'keep me')
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204
    assert api.get(f"/v2/images/{image['id']}").status_code == 404
    row = helpers.image_row(config_glance, image['id'])
    assert row['status'] == 'pending_delete'
    assert row['deleted'] in (1, True)
    locations = helpers.db_rows(
        config_glance, 'SELECT value, status FROM image_locations '
        'WHERE image_id = ?', image['id'])
    assert [loc['status'] for loc in locations] == ['pending_delete']
    with open(locations[0]['value'][len('file://'):], 'rb') as f:
        assert f.read() == b'keep me'
    queued = api.create()
    assert api.delete(f"/v2/images/{queued['id']}").status_code == 204
    assert helpers.image_row(config_glance, queued['id'])['status'] == (
        'deleted')


def test_direct_url_and_locations_when_enabled(config_glance):
    api = Api(config_glance, helpers.new_project())
    image = api.create_active(data=b'located')
    assert image['direct_url'].startswith('file://')
    assert image['direct_url'].endswith(image['id'])
    assert image['locations'] == [{'url': image['direct_url'],
                                   'metadata': {}}]
    queued = api.create()
    assert queued['locations'] == []
    assert 'direct_url' not in queued


# ----------------------------------------------------------------- quotas


def test_image_property_quota(quota_glance):
    """image_property_quota=3: a create or PATCH beyond it is 413."""
    api = Api(quota_glance, helpers.new_project())
    resp = api.post('/v2/images', json={'a': '1', 'b': '2', 'c': '3',
                                        'd': '4'})
    assert resp.status_code == 413, error_text(resp)
    image = api.create(a='1', b='2', c='3')
    resp = patch(api, image['id'], [{'op': 'add', 'path': '/d',
                                     'value': '4'}])
    assert resp.status_code == 413, error_text(resp)
    assert 'd' not in api.show(image['id'])
    # Replacing within the quota is fine.
    resp = patch(api, image['id'], [{'op': 'remove', 'path': '/a'},
                                    {'op': 'add', 'path': '/d',
                                     'value': '4'}])
    assert resp.status_code == 200, error_text(resp)


# ----------------------------------------------------- schemas, discovery


@pytest.mark.parametrize('name', ['image', 'images', 'member', 'members'])
def test_schemas(owner, name):
    resp = owner.get(f'/v2/schemas/{name}')
    assert resp.status_code == 200, error_text(resp)
    assert resp.headers['Content-Type'].startswith('application/json')
    schema = resp.json()
    assert schema['name'] == name
    assert 'properties' in schema


def test_image_schema_content(owner):
    schema = owner.get('/v2/schemas/image').json()
    for field in helpers.BASE_FIELDS:
        assert field in schema['properties'], field
    assert schema['additionalProperties'] == {'type': 'string'}
    assert set(schema['properties']['visibility']['enum']) == {
        'public', 'private', 'shared', 'community'}
    rels = {link['rel']: link['href'] for link in schema['links']}
    assert rels == {'self': '{self}', 'enclosure': '{file}',
                    'describedby': '{schema}'}
    images = owner.get('/v2/schemas/images').json()
    assert set(images['properties']) >= {'images', 'first', 'next',
                                         'schema'}
    assert images['properties']['images']['items']['name'] == 'image'
    members = owner.get('/v2/schemas/members').json()
    assert set(members['properties']) >= {'members', 'schema'}
    member = owner.get('/v2/schemas/member').json()
    assert set(member['properties']) >= {'member_id', 'image_id', 'status',
                                         'created_at', 'updated_at',
                                         'schema'}


def test_schema_accepts_its_own_images(owner):
    """What the image schema says validates what the API returns (as
    python-glanceclient checks)."""
    jsonschema = pytest.importorskip('jsonschema')
    schema = owner.get('/v2/schemas/image').json()
    image = owner.create_active(data=b'abc', name='valid', foo='bar')
    jsonschema.validate(image, schema)


def test_info_stores_is_404_without_multi_store(owner):
    resp = owner.get('/v2/info/stores')
    assert resp.status_code == 404, error_text(resp)


# ------------------------------------------------------------- routing


@pytest.mark.parametrize('method, path, allowed', [
    ('PUT', '/v2/images', {'GET', 'POST'}),
    ('DELETE', '/v2/images', {'GET', 'POST'}),
    ('PATCH', '/v2/images', {'GET', 'POST'}),
    ('POST', '/v2/images/{id}', {'GET', 'PATCH', 'DELETE'}),
    ('PUT', '/v2/images/{id}', {'GET', 'PATCH', 'DELETE'}),
    ('POST', '/v2/images/{id}/file', {'GET', 'PUT'}),
    ('DELETE', '/v2/images/{id}/file', {'GET', 'PUT'}),
    ('GET', '/v2/images/{id}/tags/t', {'PUT', 'DELETE'}),
    ('POST', '/v2/images/{id}/tags/t', {'PUT', 'DELETE'}),
    ('PUT', '/v2/images/{id}/members', {'GET', 'POST'}),
    ('POST', '/v2/images/{id}/members/m', {'GET', 'PUT', 'DELETE'}),
    ('GET', '/v2/images/{id}/actions/deactivate', {'POST'}),
    ('DELETE', '/v2/images/{id}/actions/reactivate', {'POST'}),
    ('POST', '/v2/schemas/image', {'GET'}),
    ('PUT', '/v2/schemas/members', {'GET'}),
    ('POST', '/v2/info/stores', {'GET'}),
])
def test_wrong_method_is_405_with_allow(owner, method, path, allowed):
    image = owner.create()
    resp = owner.request(method, path.format(id=image['id']))
    assert resp.status_code == 405, error_text(resp)
    got = {m.strip() for m in resp.headers['Allow'].split(',')}
    # HEAD may be advertised next to GET.
    assert got - {'HEAD'} == allowed


@pytest.mark.parametrize('path', [
    '/v2/nonexistent', '/v2/images/{id}/bogus', '/v2/images/{id}/file/x',
    '/v2/images/{id}/actions/bogus', '/v2/images/{id}/tags',
    '/v2/schemas/bogus', '/v2/info/bogus',
])
def test_unknown_path_is_404(owner, path):
    image = owner.create()
    resp = owner.get(path.format(id=image['id']))
    assert resp.status_code == 404, error_text(resp)


@pytest.mark.parametrize('method', ['GET', 'DELETE'])
def test_body_where_none_is_expected_is_400(owner, method):
    image = owner.create()
    resp = owner.request(method, f"/v2/images/{image['id']}",
                         data='{"a": 1}',
                         headers={'Content-Type': 'application/json'})
    assert resp.status_code == 400, error_text(resp)
    # Nothing was deleted.
    assert owner.show(image['id'])['status'] == 'queued'


def test_versioned_paths_and_timestamps_move(owner):
    """/v2.N/ paths reach the same API; updated_at moves on update."""
    image = owner.create(name='v')
    resp = owner.get(f"/v2.1/images/{image['id']}")
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['id'] == image['id']
    time.sleep(1.1)
    resp = patch(owner, image['id'],
                 [{'op': 'replace', 'path': '/name', 'value': 'w'}])
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['updated_at'] > image['updated_at']
    assert resp.json()['created_at'] == image['created_at']
