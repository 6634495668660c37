"""Location status transitions through the DB API, on a real SQLite file.

``db_api.location_transition`` is the one place a location's status
changes: only the moves of ``domain.LOCATION_TRANSITIONS`` (the spec's
graph) are allowed, and each is a compare-and-set on the status the caller
expects, so that of two workers racing for one location exactly one wins,
whether they are threads or processes.
"""

import datetime
import inspect
import multiprocessing
import threading
import uuid

import pytest
import sqlalchemy as sa

from glance import domain
from glance.common import exception
from glance.common.utils import utcnow
from glance.db import api as db_api

STATUSES = ('active', 'pending_delete', 'deleted')
# The spec's graph: data uploaded or location added -> active; deleted
# with delayed_delete off -> deleted; on -> pending_delete, then the
# scrubber -> deleted (or a restore -> active).
SPEC_MOVES = {('active', 'pending_delete'), ('active', 'deleted'),
              ('pending_delete', 'deleted'), ('pending_delete', 'active')}


def new_image(status='active', locations=2):
    """An image with ``locations`` active locations; (image id, ids)."""
    image_id = str(uuid.uuid4())
    db_api.image_create(
        {'id': image_id, 'name': 'transitions', 'status': status,
         'visibility': 'private', 'protected': False, 'os_hidden': False,
         'owner': 'p1', 'min_disk': 0, 'min_ram': 0, 'disk_format': 'raw',
         'container_format': 'bare', 'size': 3}, {}, [])
    ids = db_api.image_update(image_id, add_locations=[
        {'url': f'file:///nowhere/{image_id}-{n}', 'metadata': {}}
        for n in range(locations)])
    return image_id, ids


def location_row(location_id):
    with db_api.get_engine().connect() as conn:
        return conn.execute(sa.text(
            'SELECT status, deleted, deleted_at FROM image_locations '
            'WHERE id = :id'), {'id': location_id}).one()._asdict()


def force_status(location_id, status):
    """Put a location in a status directly (test setup, no rules)."""
    gone = status != 'active'
    with db_api.get_engine().begin() as conn:
        conn.execute(sa.text(
            'UPDATE image_locations SET status = :s, deleted = :d, '
            'deleted_at = :t WHERE id = :id'),
            {'s': status, 'd': gone, 't': utcnow() if gone else None,
             'id': location_id})


def test_the_allowed_moves_are_the_specs():
    allowed = {(src, dst) for src, dsts in domain.LOCATION_TRANSITIONS.items()
               for dst in dsts}
    assert allowed == SPEC_MOVES
    assert set(domain.LOCATION_TRANSITIONS) == set(STATUSES)


FORBIDDEN = sorted(
    {(src, dst) for src in STATUSES + ('weird',)
     for dst in STATUSES + ('weird', '')} - SPEC_MOVES)


@pytest.mark.parametrize('src,dst', FORBIDDEN)
def test_a_move_outside_the_graph_is_refused(sqlite_db, src, dst):
    _, (loc, _other) = new_image()
    if src in STATUSES:
        force_status(loc, src)
    before = location_row(loc)
    with pytest.raises(exception.Invalid):
        db_api.location_transition(loc, src, dst)
    assert location_row(loc) == before


@pytest.mark.parametrize('src,dst', sorted(SPEC_MOVES))
def test_an_allowed_move_applies_once(sqlite_db, src, dst):
    _, (loc, other) = new_image()
    force_status(loc, src)

    assert db_api.location_transition(loc, src, dst) is True

    row = location_row(loc)
    assert row['status'] == dst
    # Upstream's invariant: deleted = 1 whenever status is not active.
    assert bool(row['deleted']) == (dst != 'active')
    assert (row['deleted_at'] is not None) == (dst != 'active')
    # The other location of the image is untouched.
    assert location_row(other)['status'] == 'active'
    # The same move again finds the row no longer in ``src``.
    assert db_api.location_transition(loc, src, dst) is False
    assert location_row(loc) == row


@pytest.mark.parametrize('src,dst', sorted(SPEC_MOVES))
def test_a_row_not_in_the_expected_status_is_left(sqlite_db, src, dst):
    _, (loc, _other) = new_image()
    for actual in STATUSES:
        if actual == src:
            continue
        force_status(loc, actual)
        before = location_row(loc)
        assert db_api.location_transition(loc, src, dst) is False
        assert location_row(loc) == before


def test_an_unknown_location_is_not_moved(sqlite_db):
    assert db_api.location_transition(987654, 'active',
                                      'pending_delete') is False


ROUNDS = 40


def race(location_ids, workers=2):
    """Each location raced by ``workers`` threads at once; the list of
    results (one list of booleans per location)."""
    results = [[None] * workers for _ in location_ids]
    barrier = threading.Barrier(workers)
    errors = []

    def work(n):
        try:
            for i, loc in enumerate(location_ids):
                barrier.wait(timeout=30)
                results[i][n] = db_api.location_transition(
                    loc, 'active', 'pending_delete')
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(n,))
               for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def test_two_threads_racing_one_move_exactly_one_wins(sqlite_db):
    locations = []
    for _ in range(ROUNDS // 2):
        locations += new_image()[1]
    results = race(locations)
    for loc, outcome in zip(locations, results):
        assert sorted(outcome) == [False, True], (loc, outcome)
        assert location_row(loc)['status'] == 'pending_delete'


def test_racing_threads_on_every_database(db):
    """Where a read-then-write would let both win (MariaDB, PostgreSQL
    run transactions side by side), the compare-and-set still lets one."""
    locations = []
    for _ in range(ROUNDS // 4):
        locations += new_image()[1]
    results = race(locations, workers=4)
    for outcome in results:
        assert outcome.count(True) == 1, outcome


def test_many_threads_racing_one_move_exactly_one_wins(sqlite_db):
    locations = new_image(locations=10)[1]
    results = race(locations, workers=6)
    for outcome in results:
        assert outcome.count(True) == 1, outcome


def _process_worker(url, location_ids, barrier, queue):
    # A fresh engine in this process (forked: never reuse the parent's).
    from oslo_config import cfg

    db_api.dispose()
    cfg.CONF.set_override('connection', url, group='database')
    outcome = []
    for loc in location_ids:
        barrier.wait(timeout=60)
        outcome.append(db_api.location_transition(loc, 'active',
                                                  'pending_delete'))
    queue.put(outcome)


def test_two_processes_racing_one_move_exactly_one_wins(sqlite_db):
    """Two glance-api workers are processes sharing the SQLite file."""
    locations = []
    for _ in range(ROUNDS // 2):
        locations += new_image()[1]
    db_api.dispose()
    ctx = multiprocessing.get_context('fork')
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_worker,
                         args=(sqlite_db, locations, barrier, queue))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    outcomes = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    for i, loc in enumerate(locations):
        assert sorted(o[i] for o in outcomes) == [False, True], loc
        assert location_row(loc)['status'] == 'pending_delete'


# --- the queue the scrubber reads ---------------------------------------

def queue_ids(deleted_before=None):
    deleted_before = deleted_before or utcnow() + datetime.timedelta(
        seconds=5)
    kwargs = {}
    params = inspect.signature(db_api.pending_delete_locations).parameters
    if 'stale_claims_before' in params:
        kwargs['stale_claims_before'] = utcnow() - datetime.timedelta(
            hours=1)
    return {loc['id'] for loc in db_api.pending_delete_locations(
        deleted_before, 1000, **kwargs)}


def test_queue_holds_exactly_the_pending_delete_locations(sqlite_db):
    image_id, (a, b) = new_image()
    db_api.location_transition(a, 'active', 'pending_delete')
    db_api.location_transition(b, 'active', 'pending_delete')
    db_api.image_destroy(image_id, 'pending_delete')
    new_image()  # active locations: not queued
    other_id, (e, f) = new_image()
    db_api.location_transition(e, 'active', 'deleted')
    db_api.location_transition(f, 'active', 'deleted')
    db_api.image_destroy(other_id, 'deleted')

    assert queue_ids() == {a, b}
    db_api.location_transition(a, 'pending_delete', 'deleted')
    assert queue_ids() == {b}


def test_queue_holds_a_location_removed_from_a_live_image(sqlite_db):
    """A location removed from a multi-location image with delayed_delete
    is pending_delete while its image stays active: its data waits for the
    scrubber like a deleted image's ("which locations wait for the
    scrubber is a query on location status")."""
    _, (kept, removed) = new_image()
    assert db_api.location_transition(removed, 'active', 'pending_delete')

    assert removed in queue_ids(), (
        'a pending_delete location of an active image is not in the queue: '
        'its data would never be deleted')
    assert kept not in queue_ids()


# --- a delete that read the image while another delete was under way ---

def test_delete_reading_a_half_deleted_image_keeps_pending_delete(
        sqlite_db, conf):
    """Two DELETEs of one image with delayed_delete, interleaved step by
    step as two API workers can run them: A retires the locations
    (active -> pending_delete), B reads the image (no active location left)
    and deletes it, A's own destroy then finds it gone. The data still
    waits in the store, so the image must end pending_delete, not deleted.
    """
    from glance import context as glance_context
    from glance import gateway
    from glance import location

    conf.set('delayed_delete', True)
    image_id, location_ids = new_image()
    ctx = glance_context.RequestContext(is_admin=True, project_id='p1')

    repo_a = gateway.image_repo(ctx)
    image_a = repo_a.get(image_id)
    image_a.delete(delayed_delete=True)
    assert image_a.status == 'pending_delete'
    for loc in image_a.active_locations:  # A: first half of its remove
        location.retire_location(ctx, loc, delayed=True)

    repo_b = gateway.image_repo(ctx)  # B reads now, then deletes
    image_b = repo_b.get(image_id)
    image_b.delete(delayed_delete=True)
    repo_b.remove(image_b)

    with pytest.raises(exception.NotFound):  # A: second half
        repo_a.remove(image_a)

    with db_api.get_engine().connect() as conn:
        status = conn.execute(sa.text(
            'SELECT status FROM images WHERE id = :id'),
            {'id': image_id}).scalar_one()
    assert [location_row(loc)['status'] for loc in location_ids] == [
        'pending_delete'] * 2
    assert status == 'pending_delete', (
        'the image is marked deleted while its data waits for the scrubber')
