"""``glance-manage db purge`` and ``db purge_images_table`` on SQLite,
MariaDB and PostgreSQL, through the real command (a subprocess with a
config file, after ``glance-manage db sync``).

Rows are put straight into the tables, each with its expected fate, and
after each command the surviving rows are compared with the expected ones
row by row (issue 8; spec database-purge; reference glance-compat.md §6):

* ``purge`` removes rows soft-deleted (``deleted`` true) before the cut-off
  from every table that soft-deletes, children first, ``task_info`` with
  its task, and never a row that is not soft-deleted, a location still
  ``pending_delete`` or any row of an image still ``pending_delete`` (the
  scrubber's queue), whatever their age. It never removes ``images`` rows
  (OSSN-0075).
* ``purge_images_table`` removes only deleted images older than its age
  that nothing refers to any more, never a ``pending_delete`` one.
* ``--max_rows`` is per table, ``-1`` is no limit, ``0`` deletes nothing.
* Bad input: one line ``ERROR: ...`` on stderr, non-zero exit, nothing
  deleted.

The in-process tests at the end cover what a subprocess can't see
cheaply: batch boundaries and the progress lines of a long run.
"""

import collections
import concurrent.futures
import datetime
import re
import threading
import time
import tracemalloc
import uuid

import pytest
import requests
import sqlalchemy as sa

from glance.common import exception
from glance.common.utils import utcnow
from glance.db import api as db_api
from glance.db import models
from glance.db import purge as purge_module
from tests.conftest import sync_database
from tests.functional.conftest import start_glance  # noqa: F401 (fixture)
from tests.helpers import free_port, run_command, write_conf

KINDS = ['sqlite', 'mariadb', 'postgresql']
# What `purge` reports on, in the order it purges (children first).
PURGE_TABLES = ('task_info', 'image_properties', 'image_tags',
                'image_locations', 'image_members', 'tasks')
CHILD_TABLES = ('image_properties', 'image_tags', 'image_locations',
                'image_members')
# Every table a row of the tests may live in, and its key column.
KEYS = {'images': 'id', 'image_properties': 'id', 'image_tags': 'id',
        'image_locations': 'id', 'image_members': 'id', 'tasks': 'id',
        'task_info': 'task_id', 'image_location_claims': 'location_id'}
# Insertion order (parents first).
INSERT_ORDER = ('images', 'image_properties', 'image_tags',
                'image_locations', 'image_members', 'image_location_claims',
                'tasks', 'task_info')
TABLES = models.Base.metadata.tables

# Fates of a row.
KEEP = 'keep'            # survives both commands
PURGE = 'purge'          # removed by `db purge`
IMAGES = 'images'        # removed by `db purge_images_table` (images only)


# --- running the command ------------------------------------------------

def conf_for(url, path):
    return write_conf(path, {'database': {'connection': url}})


def manage(conf_file, *args):
    return run_command('manage', conf_file, *args)


def ok(result):
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert 'Traceback' not in output, output
    return result.stdout


def synced_conf(url, tmp_path):
    """The config file of a database brought to head (in-process, as
    ``db sync`` does: the migration tests run the command itself; a
    command costs seconds of start-up)."""
    sync_database(url)
    return conf_for(url, tmp_path / 'glance-manage.conf')


def reported(stdout):
    """({table: count}, total) from the command's output: a line per
    table naming it with its count, and a line with the total."""
    counts, total = {}, None
    for line in stdout.splitlines():
        words = set(re.findall(r'[a-z_]+', line.lower()))
        numbers = [int(n) for n in re.findall(r'\b\d+\b', line)]
        if not numbers or line.lstrip().startswith('...'):
            continue
        named = [t for t in KEYS if t in words]
        if 'total' in words:
            total = numbers[0]
        elif len(named) == 1:
            counts[named[0]] = numbers[0]
    return counts, total


def assert_reported(stdout, expected):
    counts, total = reported(stdout)
    assert counts == expected, stdout
    assert total == sum(expected.values()), stdout


# --- rows ---------------------------------------------------------------

class Rows:
    """Rows put straight into the database, each with a fate and a label
    (what it is, for readable failures)."""

    def __init__(self, url):
        self.url = url
        self.now = utcnow()
        self.old = self.now - datetime.timedelta(days=10)
        self.new = self.now - datetime.timedelta(hours=1)
        self.rows = collections.defaultdict(list)
        self.fates = {}            # (table, key) -> fate
        self.labels = {}           # (table, key) -> label
        self._ids = iter(range(1, 10 ** 6))

    def _add(self, table, key, values, fate, label):
        self.rows[table].append(values)
        self.fates[(table, key)] = fate
        self.labels[(table, key)] = label
        return key

    @staticmethod
    def _deleted(deleted_at, deleted):
        return deleted_at is not None if deleted is None else deleted

    def image(self, label, status='active', deleted_at=None, fate=KEEP,
              deleted=None):
        image_id = str(uuid.uuid4())
        return self._add('images', image_id, {
            'id': image_id, 'name': label, 'status': status,
            'visibility': 'shared', 'min_disk': 0, 'min_ram': 0,
            'protected': False, 'os_hidden': False, 'created_at': self.old,
            'updated_at': deleted_at or self.old, 'deleted_at': deleted_at,
            'deleted': self._deleted(deleted_at, deleted)}, fate, label)

    def child(self, table, image_id, label, deleted_at=None, fate=KEEP,
              deleted=None, status=None):
        key = next(self._ids)
        values = {'id': key, 'image_id': image_id, 'created_at': self.old,
                  'updated_at': deleted_at or self.old,
                  'deleted_at': deleted_at,
                  'deleted': self._deleted(deleted_at, deleted)}
        if table == 'image_properties':
            values.update(name=f'prop_{key}', value=label)
        elif table == 'image_tags':
            values.update(value=f'tag_{key}')
        elif table == 'image_locations':
            default = 'deleted' if values['deleted'] else 'active'
            values.update(value=f'file:///images/{key}', meta_data='{}',
                          status=status or default)
        elif table == 'image_members':
            values.update(member=f'project_{key}', can_share=False,
                          status='accepted')
        return self._add(table, key, values, fate, f'{table} {label}')

    def children(self, image_id, label, deleted_at=None, fate=KEEP,
                 location_status=None):
        """One row in each child table."""
        return {table: self.child(
            table, image_id, label, deleted_at, fate,
            status=location_status if table == 'image_locations' else None)
            for table in CHILD_TABLES}

    def claim(self, location_id, label, fate=KEEP):
        return self._add('image_location_claims', location_id, {
            'location_id': location_id, 'claimed_by': 'scrubber-1',
            'claimed_at': self.old}, fate, f'claim {label}')

    def task(self, label, deleted_at=None, fate=KEEP, info=True,
             deleted=None, status='success'):
        task_id = str(uuid.uuid4())
        self._add('tasks', task_id, {
            'id': task_id, 'type': 'import', 'status': status,
            'owner': 'project_a', 'created_at': self.old,
            'updated_at': deleted_at or self.old, 'deleted_at': deleted_at,
            'deleted': self._deleted(deleted_at, deleted)},
            fate, f'task {label}')
        if info:
            self._add('task_info', task_id, {
                'task_id': task_id, 'input': f'{{"label": "{label}"}}',
                'result': None, 'message': ''}, fate, f'task_info {label}')
        return task_id

    def insert(self):
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                for table in INSERT_ORDER:
                    for values in self.rows[table]:
                        # Core on the bare table: no Python-side encoding.
                        conn.execute(sa.insert(sa.table(
                            table, *(sa.column(c) for c in values))),
                            values)
        finally:
            engine.dispose()
        return self

    def expected(self, *fates):
        """{table: set of keys} of the rows whose fate is in ``fates``."""
        result = {table: set() for table in KEYS}
        for (table, key), fate in self.fates.items():
            if fate in fates:
                result[table].add(key)
        return result

    def count(self, fate):
        counts = collections.Counter(
            table for (table, _), f in self.fates.items() if f == fate)
        return dict(counts)

    def assert_survivors(self, *fates):
        """The database holds exactly the rows whose fate is in ``fates``
        (and none of the others), table by table."""
        actual = present(self.url)
        expected = self.expected(*fates)
        problems = {}
        for table in KEYS:
            gone = expected[table] - actual[table]
            extra = actual[table] - expected[table]
            if gone or extra:
                problems[table] = {
                    'wrongly removed': sorted(
                        self.labels[(table, k)] for k in gone),
                    'wrongly kept': sorted(
                        self.labels.get((table, k), str(k)) for k in extra)}
        assert problems == {}


def present(url):
    """{table: set of keys} of the rows in the database."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {table: set(conn.execute(sa.select(
                sa.column(key)).select_from(sa.table(table))).scalars())
                for table, key in KEYS.items()}
    finally:
        engine.dispose()


def row_counts(url):
    return {table: len(keys) for table, keys in present(url).items()}


# --- the spec's test ----------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_spec_three_rows_in_each_table(kind, new_database_url, tmp_path):
    """In every purged table, three rows: deleted now, deleted 10 days
    ago, not deleted. Purge with 7 days removes only the 10-day-old one;
    images rows only go with purge_images_table."""
    url = new_database_url(kind)
    conf_file = synced_conf(url, tmp_path)
    rows = Rows(url)
    parent = rows.image('parent of the children')
    for table in CHILD_TABLES:
        rows.child(table, parent, 'deleted now', rows.now)
        rows.child(table, parent, 'deleted 10 days ago', rows.old, PURGE)
        rows.child(table, parent, 'not deleted')
    rows.task('deleted now', rows.now)
    rows.task('deleted 10 days ago', rows.old, PURGE)
    rows.task('not deleted', status='processing')
    rows.image('deleted now', 'deleted', rows.now)
    rows.image('deleted 10 days ago', 'deleted', rows.old, IMAGES)
    rows.image('not deleted')
    rows.insert()

    stdout = ok(manage(conf_file, 'db', 'purge', '--age_in_days', '7'))
    rows.assert_survivors(KEEP, IMAGES)
    assert_reported(stdout, {table: 1 for table in PURGE_TABLES})
    # task_info (which refers to tasks) is purged before tasks.
    lines = stdout.splitlines()
    assert [i for i, line in enumerate(lines) if 'task_info' in line] < [
        i for i, line in enumerate(lines) if re.search(r'\btasks\b', line)]

    # Upstream's positional form.
    stdout = ok(manage(conf_file, 'db', 'purge_images_table', '7'))
    rows.assert_survivors(KEEP)
    assert_reported(stdout, {'images': 1})


# --- a realistic mix ----------------------------------------------------

def build_mix(rows):
    """Images in every state with children of every kind, some deleted
    and some not, old and new, and tasks; the scrubber's queue in it."""
    old, new = rows.old, rows.new

    # A live image: its live children stay, old soft-deleted ones go,
    # recent ones stay.
    live = rows.image('active image')
    rows.children(live, 'live of active image')
    rows.children(live, 'old deleted of active image', old, PURGE)
    rows.children(live, 'new deleted of active image', new)
    # Locations in every status and state.
    rows.child('image_locations', live, 'old removed, status active', old,
               PURGE, status='active')
    rows.child('image_locations', live, 'old, pending_delete (queue)', old,
               KEEP, status='pending_delete')
    rows.child('image_locations', live, 'new, pending_delete', new, KEEP,
               status='pending_delete')
    rows.child('image_locations', live, 'live, pending_delete, not deleted',
               status='pending_delete')
    # Not soft-deleted, whatever deleted_at says (a revived property).
    rows.child('image_properties', live, 'revived, old deleted_at', old,
               KEEP, deleted=False)
    # Soft-deleted without a deletion time: not older than anything.
    rows.child('image_tags', live, 'deleted, no deleted_at', None, KEEP,
               deleted=True)
    for status in ('queued', 'saving', 'uploading', 'importing',
                   'deactivated'):
        image = rows.image(f'{status} image', status)
        rows.children(image, f'live of {status} image')
        rows.children(image, f'old deleted of {status} image', old, PURGE)

    # Deleted long ago, children too: everything but the images row goes
    # with purge, the images row with purge_images_table.
    gone = rows.image('old deleted image', 'deleted', old, IMAGES)
    rows.children(gone, 'of old deleted image', old, PURGE)
    rows.children(gone, 'more of old deleted image', old, PURGE)
    # A stale scrubber claim on a deleted location goes with it.
    location = rows.child('image_locations', gone, 'claimed, deleted', old,
                          PURGE)
    rows.claim(location, 'of deleted location', PURGE)
    rows.image('old killed image, no children', 'killed', old, IMAGES)
    rows.image('old deleted image, no children', 'deleted', old, IMAGES)

    # Deleted recently: everything stays.
    recent = rows.image('new deleted image', 'deleted', new)
    rows.children(recent, 'of new deleted image', new)
    # Deleted long ago, children recently (or not at all): the image stays
    # as long as a child does.
    rows.children(rows.image('old deleted image, new deleted children',
                             'deleted', old),
                  'new deleted of old deleted image', new)
    kept = rows.image('old deleted image with a live property', 'deleted',
                      old)
    rows.child('image_properties', kept, 'live of old deleted image')
    rows.children(kept, 'old deleted of old deleted image', old, PURGE)
    # Deleted, but its data still waits in the queue (the scrubber failed
    # on it): the location and so the image stay.
    waiting = rows.image('old deleted image with a queued location',
                         'deleted', old)
    rows.child('image_locations', waiting, 'pending_delete of deleted image',
               old, KEEP, status='pending_delete')
    rows.children(waiting, 'old deleted of image with a queued location',
                  old, PURGE)
    # Soft-deleted without a deletion time.
    rows.image('deleted image without deleted_at', 'deleted', None,
               deleted=True)

    # The scrubber's queue: every row of a pending_delete image stays,
    # whatever its age and status, and so does the image.
    for age, when in (('old', old), ('new', new)):
        pending = rows.image(f'{age} pending_delete image',
                             'pending_delete', when)
        rows.children(pending, f'of {age} pending_delete image', when,
                      location_status='pending_delete')
        queued = rows.child('image_locations', pending,
                            f'second queued location of {age} '
                            'pending_delete image', when,
                            status='pending_delete')
        rows.claim(queued, 'of a queued location')
        rows.child('image_properties', pending,
                   f'live property of {age} pending_delete image')

    # Tasks: task_info goes with its task, before it.
    rows.task('old deleted, with info', old, PURGE, status='success')
    rows.task('old deleted, another', old, PURGE, status='failure')
    rows.task('old deleted, no info', old, PURGE, info=False)
    rows.task('new deleted', new)
    rows.task('live', status='processing')
    rows.task('live, old deleted_at', old, deleted=False)
    return rows


@pytest.mark.parametrize('kind', KINDS)
def test_realistic_mix_exact_survivors(kind, new_database_url, tmp_path):
    url = new_database_url(kind)
    conf_file = synced_conf(url, tmp_path)
    rows = build_mix(Rows(url)).insert()
    purged = {table: rows.count(PURGE).get(table, 0)
              for table in PURGE_TABLES}
    assert all(purged.values())

    # --dry-run: the counts, and nothing deleted.
    stdout = ok(manage(conf_file, 'db', 'purge', '--age_in_days', '7',
                       '--max_rows', '-1', '--dry-run'))
    assert_reported(stdout, purged)
    rows.assert_survivors(KEEP, IMAGES, PURGE)

    stdout = ok(manage(conf_file, 'db', 'purge', '--age_in_days', '7',
                       '--max_rows', '-1'))
    rows.assert_survivors(KEEP, IMAGES)
    assert_reported(stdout, purged)

    stdout = ok(manage(conf_file, 'db', 'purge_images_table',
                       '--age_in_days', '7', '--max_rows', '-1'))
    rows.assert_survivors(KEEP)
    assert_reported(stdout, {'images': rows.count(IMAGES)['images']})
    # Nothing left refers to an image that is gone.
    remaining = present(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for table in CHILD_TABLES:
                image_ids = set(conn.execute(sa.text(
                    f'SELECT image_id FROM {table}')).scalars())
                assert image_ids <= remaining['images'], table
    finally:
        engine.dispose()


# --- --max_rows ---------------------------------------------------------

def build_five_per_table(rows):
    """Five old soft-deleted rows in each purged table, one live row each.
    """
    live = rows.image('live image')
    for i in range(5):
        rows.children(live, f'old deleted {i}', rows.old, PURGE)
        rows.task(f'old deleted {i}', rows.old, PURGE)
    rows.children(live, 'live')
    rows.task('live', status='pending')
    rows.image('old deleted image', 'deleted', rows.old, IMAGES)
    return rows


@pytest.mark.parametrize('kind', KINDS)
def test_max_rows_is_per_table_and_both_forms(kind, new_database_url,
                                              tmp_path):
    url = new_database_url(kind)
    conf_file = synced_conf(url, tmp_path)
    rows = build_five_per_table(Rows(url)).insert()
    before = row_counts(url)

    # 0: nothing, and it says so.
    result = manage(conf_file, 'db', 'purge', '--age_in_days', '7',
                    '--max_rows', '0')
    stdout = ok(result)
    assert row_counts(url) == before
    assert re.search(r'\b(0|nothing|no rows)\b', stdout.lower()), stdout

    # 2 per table, not 2 in all.
    stdout = ok(manage(conf_file, 'db', 'purge', '--age_in_days', '7',
                       '--max_rows', '2'))
    assert_reported(stdout, {table: 2 for table in PURGE_TABLES})
    after = row_counts(url)
    assert {t: before[t] - after[t] for t in KEYS} == dict(
        {t: 2 for t in PURGE_TABLES}, images=0, image_location_claims=0)
    tasks = present(url)
    assert tasks['task_info'] <= tasks['tasks']

    # Upstream's positional form, -1: all the rest.
    stdout = ok(manage(conf_file, 'db', 'purge', '7', '-1'))
    rows.assert_survivors(KEEP, IMAGES)
    assert_reported(stdout, {table: 3 for table in PURGE_TABLES})


# --- bad input ----------------------------------------------------------

def _epoch_days():
    return (utcnow() - datetime.datetime(1970, 1, 1)).days


# Through the command: each message once, both forms of a bad age.
BAD_INPUT = [
    ('purge', '--age_in_days', '-1'),
    ('purge', '--age_in_days', 'abc'),
    ('purge', 'abc', '10'),
    ('purge', '--age_in_days', 'EPOCH'),
    ('purge', '--max_rows', '-2'),
    ('purge', '7', 'abc'),
    ('purge', '--max_rows', '2147483648'),
    ('purge_images_table', '--age_in_days', '-5'),
]
# The rest of the validation, in-process (the command calls these first).
BAD_AGES = ['-1', '-100', 'abc', '1.5', '', ' ', '7days', '100000', 'EPOCH']
BAD_MAX_ROWS = ['-2', '-100', 'abc', '1.5', '', '2147483648',
                '99999999999999999999']


def assert_one_line_error(result):
    output = result.stdout + result.stderr
    assert 'Traceback' not in output, output
    assert result.returncode != 0, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith('ERROR: '), output
    return lines[0]


def test_bad_input_is_one_line_and_deletes_nothing(new_database_url,
                                                   tmp_path):
    """Validation doesn't depend on the database: checked on SQLite, with
    purgeable rows in every table that must all survive."""
    url = new_database_url('sqlite')
    conf_file = synced_conf(url, tmp_path)
    build_five_per_table(Rows(url)).insert()
    before = row_counts(url)
    epoch = str(_epoch_days())
    commands = [['db'] + [epoch if a == 'EPOCH' else a for a in args]
                for args in BAD_INPUT]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: manage(conf_file, *args),
                                commands))
    messages = {}
    for args, result in zip(commands, results):
        messages[' '.join(args)] = assert_one_line_error(result)
    assert row_counts(url) == before
    # The message names the problem.
    assert 'age' in messages['db purge --age_in_days -1'].lower()
    assert 'max_rows' in messages['db purge 7 abc'].lower()
    assert 'age' in messages['db purge abc 10'].lower()
    assert '2147483647' in messages['db purge --max_rows 2147483648']
    assert 'epoch' in messages[f'db purge --age_in_days {epoch}'].lower()


def test_validation_of_each_bad_value():
    epoch = str(_epoch_days())
    for raw in BAD_AGES:
        with pytest.raises(exception.Invalid):
            purge_module.parse_age(epoch if raw == 'EPOCH' else raw)
    for raw in BAD_MAX_ROWS:
        with pytest.raises(exception.Invalid):
            purge_module.parse_max_rows(raw)
    assert purge_module.parse_age('0') == 0
    assert purge_module.parse_age(str(_epoch_days() - 1)) == (
        _epoch_days() - 1)
    assert [purge_module.parse_max_rows(v) for v in
            ('-1', '0', '2147483647')] == [-1, 0, 2147483647]


@pytest.mark.parametrize('url', [
    'mysql+pymysql://glance:glance@127.0.0.1:{port}/glance',
    'postgresql+psycopg2://glance:glance@127.0.0.1:{port}/glance',
    'sqlite:///{tmp}/no/such/dir/glance.sqlite',
], ids=['mariadb', 'postgresql', 'sqlite'])
def test_unreachable_database_is_one_line(url, tmp_path):
    conf_file = conf_for(url.format(port=free_port(), tmp=tmp_path),
                         tmp_path / 'glance-manage.conf')
    started = time.monotonic()
    result = manage(conf_file, 'db', 'purge', '--age_in_days', '1')
    assert_one_line_error(result)
    assert time.monotonic() - started < 60


def test_database_error_during_purge_is_one_line(new_database_url,
                                                 tmp_path):
    """A delete the database refuses (here a foreign key from a table of
    the operator's onto an old deleted property) fails the command with
    one line, not a traceback, and that batch is rolled back."""
    url = new_database_url('postgresql')
    conf_file = synced_conf(url, tmp_path)
    rows = Rows(url)
    image = rows.image('live image')
    guarded = rows.child('image_properties', image, 'referenced', rows.old)
    rows.child('image_properties', image, 'not referenced', rows.old)
    rows.insert()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                'CREATE TABLE operator_guard (property_id INTEGER '
                'REFERENCES image_properties (id))'))
            conn.execute(sa.text('INSERT INTO operator_guard VALUES (:i)'),
                         {'i': guarded})
    finally:
        engine.dispose()
    result = manage(conf_file, 'db', 'purge', '--age_in_days', '7')
    assert_one_line_error(result)
    assert len(present(url)['image_properties']) == 2


# --- purge while the API serves -----------------------------------------

def fill_deleted(url, images, when):
    """``images`` deleted images with 3 properties, 2 tags, a member and a
    location each, all deleted at ``when``; returns the child row count.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    ids = [str(uuid.uuid4()) for _ in range(images)]
    common = {'created_at': when, 'updated_at': when, 'deleted_at': when,
              'deleted': True}
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(TABLES['images']), [dict(
                common, id=i, status='deleted', visibility='private',
                min_disk=0, min_ram=0, protected=False, os_hidden=False)
                for i in ids])
            children = [
                ('image_properties', [dict(common, image_id=i, name=f'p{n}',
                                           value='v') for i in ids
                                      for n in range(3)]),
                ('image_tags', [dict(common, image_id=i, value=f't{n}')
                                for i in ids for n in range(2)]),
                ('image_members', [dict(common, image_id=i, member='m',
                                        can_share=False, status='accepted')
                                   for i in ids]),
                ('image_locations', [dict(common, image_id=i,
                                          value=f'file:///x/{i}',
                                          meta_data={}, status='deleted')
                                     for i in ids]),
            ]
            for table, values in children:
                conn.execute(sa.insert(TABLES[table]), values)
    finally:
        engine.dispose()
    return sum(len(values) for _, values in children)


class Hammer(threading.Thread):
    """Creates, patches, lists and shows images until stopped; records
    every status code and every failure to get an answer."""

    PATCH = 'application/openstack-images-v2.1-json-patch'

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url + '/v2/images'
        self.stop = threading.Event()
        self.statuses = collections.Counter()
        self.errors = []
        self.created = {}

    def _call(self, method, url, **kwargs):
        try:
            resp = self.session.request(method, url, timeout=60, **kwargs)
        except requests.RequestException as e:
            self.errors.append(f'{method} {url}: {e!r}')
            return None
        self.statuses[resp.status_code] += 1
        if resp.status_code >= 500:
            self.errors.append(f'{method} {url}: {resp.status_code} '
                               f'{resp.text[:300]}')
        return resp

    def run(self):
        self.session = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            resp = self._call('POST', self.url, json={'name': f'h{n}'})
            if resp is None or resp.status_code != 201:
                continue
            image_id = resp.json()['id']
            self.created[image_id] = f'h{n}'
            resp = self._call(
                'PATCH', f'{self.url}/{image_id}',
                json=[{'op': 'replace', 'path': '/name', 'value': f'p{n}'},
                      {'op': 'add', 'path': f'/k{n}', 'value': 'v'}],
                headers={'Content-Type': self.PATCH})
            if resp is not None and resp.status_code == 200:
                self.created[image_id] = f'p{n}'
            self._call('GET', self.url, params={'limit': 5})
            self._call('GET', f'{self.url}/{image_id}')


@pytest.mark.parametrize('kind', ['sqlite', 'mariadb'])
def test_purge_while_the_api_serves(kind, new_database_url,
                                    start_glance):  # noqa: F811
    url = new_database_url(kind)
    server = start_glance(database_url=url)
    old = utcnow() - datetime.timedelta(days=1)
    children = fill_deleted(url, 1000, old)
    hammer = Hammer(server.url)
    hammer.start()
    try:
        result = server.manage('db', 'purge', '--age_in_days', '0',
                               '--max_rows', '-1')
    finally:
        hammer.stop.set()
        hammer.join(120)
    # Both, so that a failure shows each side.
    assert (result.returncode, hammer.errors[:5]) == (0, []), (
        result.stdout + result.stderr[-3000:])
    stdout = ok(result)
    assert reported(stdout)[1] == children, stdout
    assert sum(hammer.statuses.values()) >= 20, hammer.statuses
    # Everything the API wrote is there, as it wrote it.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            names = dict(conn.execute(sa.text(
                'SELECT id, name FROM images WHERE deleted = :f'),
                {'f': False}).all())
            left = {t: conn.execute(sa.text(
                f'SELECT COUNT(*) FROM {t} WHERE deleted = :t'),
                {'t': True}).scalar() for t in CHILD_TABLES}
    finally:
        engine.dispose()
    assert {i: names.get(i) for i in hammer.created} == hammer.created
    assert left == {t: 0 for t in CHILD_TABLES}


# --- in-process: batches and progress -------------------------------------

@pytest.fixture
def sqlite_db(new_database_url, conf):
    """glance.db.api on a migrated SQLite database, for in-process tests.
    """
    url = new_database_url('sqlite')
    sync_database(url)
    db_api.dispose()
    conf.set('connection', url, group='database')
    yield url
    db_api.dispose()


def bulk_properties(url, count, when):
    """``count`` soft-deleted properties of one live image, fast."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    image_id = str(uuid.uuid4())
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(TABLES['images']), [{
                'id': image_id, 'status': 'active', 'visibility': 'private',
                'min_disk': 0, 'min_ram': 0, 'protected': False,
                'os_hidden': False, 'created_at': when, 'deleted': False}])
            conn.execute(sa.insert(TABLES['image_properties']), [{
                'image_id': image_id, 'name': f'p{n}', 'value': 'v',
                'created_at': when, 'deleted_at': when, 'deleted': True}
                for n in range(count)])
    finally:
        engine.dispose()


def property_count(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                'SELECT COUNT(*) FROM image_properties')).scalar()
    finally:
        engine.dispose()


def test_every_row_of_a_pending_delete_image_stays(db):
    """The rows of an image waiting for the scrubber stay until it is
    scrubbed, whatever their age and status, a location the scrubber
    already did included (issue 8 §1); the image's other old rows go."""
    rows = Rows(db)
    for age, when in (('old', rows.old), ('new', rows.new)):
        pending = rows.image(f'{age} pending_delete image',
                             'pending_delete', when)
        rows.children(pending, f'of {age} pending_delete image', when,
                      location_status='pending_delete')
        rows.child('image_locations', pending,
                   f'already scrubbed location of {age} pending_delete '
                   'image', when, status='deleted')
    scrubbed = rows.image('old scrubbed image', 'deleted', rows.old)
    rows.child('image_locations', scrubbed, 'scrubbed location', rows.old,
               PURGE, status='deleted')
    rows.insert()
    lines = []
    purge_module.purge(7, -1, lines.append)
    rows.assert_survivors(KEEP)


def test_max_rows_across_batch_boundaries(sqlite_db, monkeypatch):
    monkeypatch.setattr(purge_module, 'SQLITE_BATCH_ROWS', 7)
    bulk_properties(sqlite_db, 40, utcnow() - datetime.timedelta(days=2))
    lines = []
    cutoff = utcnow() - datetime.timedelta(days=1)
    assert [db_api.purge_count('image_properties', cutoff, limit)
            for limit in (15, None)] == [15, 40]
    for max_rows, expected, left in ((15, 15, 25), (14, 14, 11),
                                     (-1, 11, 0), (-1, 0, 0)):
        assert purge_module._purge_table(
            'image_properties', cutoff, max_rows, lines.append) == expected
        assert property_count(sqlite_db) == left


def test_rows_that_stay_do_not_end_the_batches(sqlite_db, monkeypatch):
    """Batches are windows of soft-deleted rows: a window of rows too
    recent to go deletes nothing, and the purge goes on past it."""
    monkeypatch.setattr(purge_module, 'SQLITE_BATCH_ROWS', 7)
    bulk_properties(sqlite_db, 10, utcnow())
    bulk_properties(sqlite_db, 40, utcnow() - datetime.timedelta(days=2))
    cutoff = utcnow() - datetime.timedelta(days=1)
    for max_rows, expected, left in ((15, 15, 35), (-1, 25, 10)):
        assert purge_module._purge_table(
            'image_properties', cutoff, max_rows, lambda line: None
        ) == expected
        assert property_count(sqlite_db) == left


def test_progress_lines_on_a_long_run(sqlite_db, monkeypatch):
    """A run longer than PROGRESS_SECONDS reports progress: with it at 0,
    every full batch does; the final per-table line and total follow."""
    monkeypatch.setattr(purge_module, 'PROGRESS_SECONDS', 0)
    monkeypatch.setattr(purge_module, 'SQLITE_BATCH_ROWS', 1000)
    bulk_properties(sqlite_db, 5500, utcnow() - datetime.timedelta(days=2))
    lines = []
    total = purge_module.purge(1, -1, lines.append)
    assert total == 5500
    progress = [line for line in lines if 'image_properties' in line
                and 'so far' in line]
    assert len(progress) >= 5, lines
    # Progress counts grow, and the table's own line comes after them.
    numbers = [int(re.search(r'\d+', line).group()) for line in progress]
    assert numbers == sorted(numbers) and numbers[-1] <= 5500
    assert lines.index(progress[-1]) < max(
        i for i, line in enumerate(lines) if 'image_properties' in line
        and '5500' in line)
    assert property_count(sqlite_db) == 0


def test_memory_stays_flat(sqlite_db):
    """Peak Python memory of purging 20,000 rows is about that of 2,000:
    nothing grows with the table."""
    when = utcnow() - datetime.timedelta(days=2)
    cutoff = utcnow() - datetime.timedelta(days=1)
    peaks = []
    for count in (2000, 20000):
        bulk_properties(sqlite_db, count, when)
        db_api.dispose()
        tracemalloc.start()
        try:
            assert purge_module._purge_table(
                'image_properties', cutoff, -1, lambda line: None) == count
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 2 * peaks[0] + 1024 * 1024, peaks
