"""Location status through the real glance-api (spec image-location-status).

Uploads make an ``active`` location; deleting an image deletes its data and
marks the location ``deleted`` with ``delayed_delete`` off, or leaves the
data, marks location and image ``pending_delete`` (API 404 at once) with it
on, for every visibility; the scrubber's queue
(``db_api.pending_delete_locations``, called in-process on the server's
database) then holds those locations. Removing one location of a
two-location image follows the same rule. Only active locations are shown
(``locations``, ``direct_url``) and read on download.

Outcomes are checked in the database rows and in the filesystem store.
"""

import concurrent.futures
import datetime
import inspect
import os
import uuid

import pytest
import sqlalchemy as sa

from glance.common.utils import utcnow
from glance.db import api as db_api
from tests.functional import helpers
from tests.functional.conftest import GlanceServer
from tests.functional.helpers import Api

VISIBILITIES = ('public', 'private', 'shared', 'community')
SHOW = {'show_multiple_locations': True, 'show_image_direct_url': True}


def _server(tmp_path_factory, name, delayed):
    return GlanceServer(tmp_path_factory.mktemp(name), {'DEFAULT': dict(
        SHOW, delayed_delete=delayed)}).start()


@pytest.fixture(scope='module')
def delayed_glance(tmp_path_factory):
    server = _server(tmp_path_factory, 'delayed', True)
    yield server
    server.stop()


@pytest.fixture(scope='module')
def direct_glance(tmp_path_factory):
    server = _server(tmp_path_factory, 'direct', False)
    yield server
    server.stop()


# --- the database and the store, seen from the test ----------------------

def rows(db_url, query, **params):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(query),
                                                           params)]
    finally:
        engine.dispose()


def execute(db_url, query, **params):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(query), params)
    finally:
        engine.dispose()


def image_row(server, image_id):
    [row] = rows(server.database_url, 'SELECT status, deleted FROM images '
                 'WHERE id = :id', id=image_id)
    return row


def location_rows(server, image_id):
    return rows(server.database_url,
                'SELECT id, value, status, deleted FROM image_locations '
                'WHERE image_id = :id ORDER BY id', id=image_id)


def path_of(url):
    assert url.startswith('file://'), url
    return url[len('file://'):]


def set_location_status(server, location_id, status):
    """Move a location behind the API's back (test setup)."""
    execute(server.database_url,
            'UPDATE image_locations SET status = :s, deleted = :d '
            'WHERE id = :id', s=status, d=status != 'active', id=location_id)


def add_file_location(server, image_id, data):
    """A second location of the image: a file of ``data`` in the store
    directory, inserted as an active location row; returns its URL."""
    path = os.path.join(server.images_dir, f'{image_id}.copy-{uuid.uuid4()}')
    with open(path, 'wb') as f:
        f.write(data)
    url = f'file://{path}'
    execute(server.database_url,
            "INSERT INTO image_locations (image_id, value, meta_data, status, "
            "created_at, updated_at, deleted) VALUES (:image_id, :url, '{}', "
            "'active', :now, :now, :f)",
            image_id=image_id, url=url, now=utcnow(), f=False)
    return url


@pytest.fixture
def queue(conf):
    """queue(database_url) -> the scrubber's queue as the DB API reads it
    (ids of pending_delete locations, any deletion time)."""
    def read(url):
        db_api.dispose()
        conf.set('connection', url, group='database')
        try:
            kwargs = {}
            params = inspect.signature(
                db_api.pending_delete_locations).parameters
            if 'stale_claims_before' in params:
                kwargs['stale_claims_before'] = utcnow() - datetime.timedelta(
                    hours=1)
            return db_api.pending_delete_locations(
                utcnow() + datetime.timedelta(minutes=5), 10000, **kwargs)
        finally:
            db_api.dispose()

    return read


def admin_of_new_project(server):
    """An admin acting in a project of its own (may publicize)."""
    return Api(server, helpers.new_project(), roles='admin,member,reader')


def active_image(api, visibility='private', data=None):
    data = data or os.urandom(64)
    image = api.create_active(data=data, visibility=visibility,
                              name=f'loc-status-{visibility}')
    assert image['status'] == 'active'
    return image, data


# --- upload and delete ------------------------------------------------------

@pytest.mark.parametrize('visibility', VISIBILITIES)
def test_delete_without_delayed_delete_deletes_data(direct_glance,
                                                    visibility, queue):
    server = direct_glance
    api = admin_of_new_project(server)
    image, _ = active_image(api, visibility)
    [loc] = location_rows(server, image['id'])
    assert (loc['status'], bool(loc['deleted'])) == ('active', False)
    path = path_of(loc['value'])
    assert os.path.exists(path)

    assert api.delete(f"/v2/images/{image['id']}").status_code == 204

    assert not os.path.exists(path)
    [loc] = location_rows(server, image['id'])
    assert (loc['status'], bool(loc['deleted'])) == ('deleted', True)
    row = image_row(server, image['id'])
    assert (row['status'], bool(row['deleted'])) == ('deleted', True)
    assert api.get(f"/v2/images/{image['id']}").status_code == 404
    assert loc['id'] not in {q['id'] for q in queue(server.database_url)}


@pytest.mark.parametrize('visibility', VISIBILITIES)
def test_delete_with_delayed_delete_leaves_data_for_the_scrubber(
        delayed_glance, visibility, queue):
    server = delayed_glance
    api = admin_of_new_project(server)
    image, data = active_image(api, visibility)
    [loc] = location_rows(server, image['id'])
    assert loc['status'] == 'active'

    assert api.delete(f"/v2/images/{image['id']}").status_code == 204

    # 404 at once, to the owner and to an admin of another project.
    assert api.get(f"/v2/images/{image['id']}").status_code == 404
    assert Api(server).get(f"/v2/images/{image['id']}").status_code == 404
    assert image['id'] not in Api(server).list_ids('?limit=1000')
    [loc] = location_rows(server, image['id'])
    assert (loc['status'], bool(loc['deleted'])) == ('pending_delete', True)
    row = image_row(server, image['id'])
    assert (row['status'], bool(row['deleted'])) == ('pending_delete', True)
    with open(path_of(loc['value']), 'rb') as f:
        assert f.read() == data
    queued = {q['id']: q for q in queue(server.database_url)}
    assert loc['id'] in queued, (visibility, queued)
    assert queued[loc['id']]['image_id'] == image['id']
    assert queued[loc['id']]['url'] == loc['value']


def test_queue_holds_every_visibility_at_once(delayed_glance, queue):
    """Four images, one per visibility, deleted together: the queue has
    all four (upstream never scrubs community images)."""
    server = delayed_glance
    api = admin_of_new_project(server)
    ids = {}
    for visibility in VISIBILITIES:
        image, _ = active_image(api, visibility)
        ids[visibility] = image['id']
    for image_id in ids.values():
        assert api.delete(f'/v2/images/{image_id}').status_code == 204
    queued_images = {q['image_id'] for q in queue(server.database_url)}
    for visibility, image_id in ids.items():
        assert image_id in queued_images, visibility


@pytest.mark.parametrize('delayed', [False, True])
def test_delete_of_a_two_location_image(direct_glance, delayed_glance,
                                        delayed, queue):
    server = delayed_glance if delayed else direct_glance
    api, image, data = two_location_image(server)
    before = location_rows(server, image['id'])

    assert api.delete(f"/v2/images/{image['id']}").status_code == 204

    status = 'pending_delete' if delayed else 'deleted'
    after = location_rows(server, image['id'])
    assert [(r['status'], bool(r['deleted'])) for r in after] == [
        (status, True)] * 2
    assert image_row(server, image['id'])['status'] == status
    for row in before:
        assert os.path.exists(path_of(row['value'])) == delayed
    queued = {q['id'] for q in queue(server.database_url)}
    assert ({r['id'] for r in after} <= queued) == delayed
    assert not ({r['id'] for r in after} & queued) or delayed


def test_delayed_delete_of_an_image_without_data(delayed_glance, queue):
    """Nothing waits for the scrubber: the image is deleted at once."""
    server = delayed_glance
    api = admin_of_new_project(server)
    image = api.create(name='no-data', disk_format='raw',
                       container_format='bare')
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204
    row = image_row(server, image['id'])
    assert (row['status'], bool(row['deleted'])) == ('deleted', True)
    assert location_rows(server, image['id']) == []
    assert image['id'] not in {q['image_id']
                               for q in queue(server.database_url)}


def test_delete_when_the_data_is_already_gone(direct_glance):
    """Data missing from the store counts as deleted."""
    server = direct_glance
    api = admin_of_new_project(server)
    image, _ = active_image(api)
    [loc] = location_rows(server, image['id'])
    os.unlink(path_of(loc['value']))

    assert api.delete(f"/v2/images/{image['id']}").status_code == 204

    [loc] = location_rows(server, image['id'])
    assert (loc['status'], bool(loc['deleted'])) == ('deleted', True)
    assert image_row(server, image['id'])['status'] == 'deleted'


@pytest.mark.parametrize('delayed', [False, True])
def test_concurrent_deletes_of_one_image(direct_glance, delayed_glance,
                                         delayed):
    """Several clients delete the same image at once (the server has two
    workers): one 204, the others 404, never a 500; image and location end
    in the one right status (a request that read the image after another
    retired its location must not decide the image's status from that)."""
    server = delayed_glance if delayed else direct_glance
    api = admin_of_new_project(server)
    status = 'pending_delete' if delayed else 'deleted'
    outcomes = []
    for _ in range(6):
        image, _ = active_image(api)
        path = f"/v2/images/{image['id']}"

        def delete(_n, path=path):
            # A session per thread: requests.Session is not thread-safe.
            return Api(server, api.project,
                       roles='admin,member,reader').delete(path).status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = sorted(pool.map(delete, range(6)))
        [loc] = location_rows(server, image['id'])
        outcomes.append({
            'codes': codes,
            'location': (loc['status'], bool(loc['deleted'])),
            'image': image_row(server, image['id'])['status'],
            'data kept': os.path.exists(path_of(loc['value']))})
    expected = {'location': (status, True), 'image': status,
                'data kept': delayed}
    for outcome in outcomes:
        assert outcome['codes'].count(204) == 1, outcomes
        assert set(outcome['codes']) <= {204, 404}, outcomes
        assert {k: outcome[k] for k in expected} == expected, outcomes


# --- removing one location through the API -------------------------------

def two_location_image(server):
    api = Api(server)  # admin: delete_image_location is admin-only
    image, data = active_image(api)
    second = add_file_location(server, image['id'], data)
    shown = api.show(image['id'])
    assert [loc['url'] for loc in shown['locations']] == [
        loc['value'] for loc in location_rows(server, image['id'])]
    assert shown['locations'][1]['url'] == second
    return api, image, data


def remove_second_location(api, image):
    return api.update(image['id'], [{'op': 'remove', 'path': '/locations/1'}])


def test_remove_location_without_delayed_delete(direct_glance, queue):
    server = direct_glance
    api, image, data = two_location_image(server)
    first, second = location_rows(server, image['id'])

    resp = remove_second_location(api, image)
    assert resp.status_code == 200, resp.text

    assert [loc['url'] for loc in resp.json()['locations']] == [
        first['value']]
    assert not os.path.exists(path_of(second['value']))
    assert os.path.exists(path_of(first['value']))
    statuses = {loc['id']: (loc['status'], bool(loc['deleted']))
                for loc in location_rows(server, image['id'])}
    assert statuses == {first['id']: ('active', False),
                        second['id']: ('deleted', True)}
    assert image_row(server, image['id'])['status'] == 'active'
    assert api.show(image['id'])['locations'] == resp.json()['locations']
    assert api.download(image['id']).content == data


def test_remove_location_with_delayed_delete(delayed_glance, queue):
    server = delayed_glance
    api, image, data = two_location_image(server)
    first, second = location_rows(server, image['id'])

    resp = remove_second_location(api, image)
    assert resp.status_code == 200, resp.text

    assert [loc['url'] for loc in resp.json()['locations']] == [
        first['value']]
    with open(path_of(second['value']), 'rb') as f:
        assert f.read() == data, 'data of a pending_delete location is kept'
    statuses = {loc['id']: (loc['status'], bool(loc['deleted']))
                for loc in location_rows(server, image['id'])}
    assert statuses == {first['id']: ('active', False),
                        second['id']: ('pending_delete', True)}
    assert image_row(server, image['id'])['status'] == 'active'
    assert api.show(image['id'])['locations'] == resp.json()['locations']
    assert api.download(image['id']).content == data


def test_removed_location_of_a_live_image_is_queued(delayed_glance, queue):
    """Its data waits for the scrubber: it must be in the queue, or it is
    never deleted (the queue is "a query on location status")."""
    server = delayed_glance
    api, image, _ = two_location_image(server)
    _first, second = location_rows(server, image['id'])
    assert remove_second_location(api, image).status_code == 200
    queued = {q['id'] for q in queue(server.database_url)}
    assert second['id'] in queued


def test_concurrent_removals_keep_the_last_location(direct_glance):
    """Two admins remove /locations/0 and /locations/1 of a two-location
    image at once. One at a time, the second is refused (403, "Cannot
    remove last location"); at once, they must not leave an active image
    with no active location (without delayed_delete: its data deleted)."""
    server = direct_glance
    outcomes = []
    for _ in range(5):
        _api, image, _data = two_location_image(server)

        def remove(n, image_id=image['id']):
            return Api(server).update(image_id, [
                {'op': 'remove', 'path': f'/locations/{n}'}]).status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(remove, [0, 1]))
        active = [r for r in location_rows(server, image['id'])
                  if r['status'] == 'active']
        outcomes.append((codes, len(active)))
    assert all(n == 1 for _codes, n in outcomes), (
        'an active image was left without any active location '
        '(codes, active locations): %s' % outcomes)
    assert all(codes[0] == 200 and codes[1] in (403, 409)
               for codes, _n in outcomes), outcomes


# --- only active locations are shown and read ----------------------------

def test_only_active_locations_are_shown_and_read(direct_glance):
    server = direct_glance
    api = Api(server)
    image, data = active_image(api, data=b'A' * 100)
    other = b'B' * 100  # same size, other bytes: shows which one is read
    second = add_file_location(server, image['id'], other)
    first, _ = location_rows(server, image['id'])

    shown = api.show(image['id'])
    assert shown['direct_url'] == first['value']
    assert [loc['url'] for loc in shown['locations']] == [first['value'],
                                                          second]
    assert api.download(image['id']).content == data

    for status in ('pending_delete', 'deleted'):
        set_location_status(server, first['id'], status)
        shown = api.show(image['id'])
        assert shown['direct_url'] == second, status
        assert [loc['url'] for loc in shown['locations']] == [second]
        listed = [i for i in api.list_all('?limit=100')
                  if i['id'] == image['id']]
        assert [loc['url'] for loc in listed[0]['locations']] == [second]
        assert listed[0]['direct_url'] == second
        resp = api.download(image['id'])
        assert resp.status_code == 200
        assert resp.content == other, status


def test_pending_delete_location_with_deleted_0_is_not_shown(direct_glance):
    """The status decides, not only the ``deleted`` flag."""
    server = direct_glance
    api = Api(server)
    image, data = active_image(api)
    second = add_file_location(server, image['id'], data)
    first, _ = location_rows(server, image['id'])
    execute(server.database_url, "UPDATE image_locations SET status = "
            "'pending_delete' WHERE id = :id", id=first['id'])
    shown = api.show(image['id'])
    assert [loc['url'] for loc in shown['locations']] == [second]
    assert shown['direct_url'] == second


def test_download_with_no_active_location_is_204(direct_glance):
    server = direct_glance
    api = Api(server)
    image, _ = active_image(api)
    [loc] = location_rows(server, image['id'])
    set_location_status(server, loc['id'], 'pending_delete')

    resp = api.download(image['id'])

    assert resp.status_code == 204, resp.text
    assert resp.content == b''
    shown = api.show(image['id'])
    assert shown['locations'] == []
    assert 'direct_url' not in shown
    # The data was not touched.
    assert os.path.exists(path_of(loc['value']))


# --- the same on a database server ---------------------------------------

def test_delayed_delete_on_mariadb(start_glance, new_database_url, queue):
    """The same on a database server (one kind, to keep the suite fast:
    the DB API's SQL is the same on PostgreSQL, which the DB tests cover).
    """
    url = new_database_url('mariadb')
    server = start_glance(options={'DEFAULT': dict(SHOW, delayed_delete=True)},
                          database_url=url)
    api = admin_of_new_project(server)
    images = {}
    for visibility in VISIBILITIES:
        image, data = active_image(api, visibility)
        images[image['id']] = data
        [loc] = location_rows(server, image['id'])
        assert loc['status'] == 'active'
    for image_id in images:
        assert api.delete(f'/v2/images/{image_id}').status_code == 204
        assert api.get(f'/v2/images/{image_id}').status_code == 404

    queued = {q['id'] for q in queue(url)}
    for image_id, data in images.items():
        assert image_row(server, image_id)['status'] == 'pending_delete'
        [loc] = location_rows(server, image_id)
        assert (loc['status'], bool(loc['deleted'])) == ('pending_delete',
                                                         True)
        with open(path_of(loc['value']), 'rb') as f:
            assert f.read() == data
        assert loc['id'] in queued
