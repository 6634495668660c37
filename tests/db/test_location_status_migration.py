"""The location_status01 migration on SQLite, MariaDB and PostgreSQL.

A fresh database is brought to the revision before it (``2024_1_schema01``)
with the real ``glance-manage``, filled with plain SQL (images in every
status, several locations each, some of them soft-deleted), then upgraded to
head; every location row is checked against the mapping of the spec
(image status -> location status): active -> active, pending_delete ->
pending_delete, killed/deleted -> deleted, anything else -> active, with a
warning naming an image whose status is unknown.

The scrubber's queue query (``db_api.pending_delete_locations``) is checked
to use the new index, by capturing the SQL it sends and asking each
database's planner about it.
"""

import datetime
import inspect

import pytest
import sqlalchemy as sa

from glance.db import api as db_api
from glance.db import migration
from tests.helpers import run_command, write_conf

PREVIOUS = '2024_1_schema01'
THIS = 'location_status01'
INDEX = 'ix_image_locations_status_image_id'

# Image status -> the status its locations must have after the upgrade.
EXPECTED = {
    'queued': 'active',
    'saving': 'active',
    'active': 'active',
    'killed': 'deleted',
    'deleted': 'deleted',
    'pending_delete': 'pending_delete',
    'deactivated': 'active',
    'uploading': 'active',
    'importing': 'active',
    'weird': 'active',
}
UNKNOWN_STATUS = 'weird'
T0 = datetime.datetime(2023, 5, 17, 8, 30, 0)


def engine_for(url):
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def upgrade_in_process(url, revision='heads'):
    engine = engine_for(url)
    try:
        migration.upgrade(revision, engine=engine)
    finally:
        engine.dispose()


@pytest.fixture
def conf_file(database_url, tmp_path):
    return write_conf(tmp_path / 'glance-manage.conf',
                      {'database': {'connection': database_url}})


def manage(conf_file, *args):
    return run_command('manage', conf_file, *args)


def ok(result):
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert 'Traceback' not in output, output
    return output


def image_id_for(status):
    # Fixed ids, unique to this module, so a warning can be matched exactly.
    return f'c0ffee00-0000-4000-8000-{sorted(EXPECTED).index(status):012d}'


def load_previous_revision_rows(engine):
    """Images in every status, 3 locations each (the last soft-deleted),
    inserted with plain SQL into a database at PREVIOUS. Returns the
    location rows as the test expects them afterwards (without status)."""
    images = []
    locations = []
    for n, status in enumerate(sorted(EXPECTED)):
        image_id = image_id_for(status)
        gone = status in ('deleted', 'pending_delete', 'killed')
        images.append({
            'id': image_id, 'name': f'img-{status}', 'size': 1024 * n,
            'status': status, 'created_at': T0, 'updated_at': T0,
            'deleted_at': T0 if gone else None,
            'deleted': status in ('deleted', 'pending_delete'),
            'disk_format': 'raw', 'container_format': 'bare',
            'owner': f'project-{n % 3}', 'min_disk': 0, 'min_ram': 0,
            'protected': False, 'visibility': ('public', 'private', 'shared',
                                               'community')[n % 4],
            'os_hidden': False})
        for k in range(3):
            locations.append({
                'image_id': image_id,
                'value': f'file:///var/lib/glance/images/{image_id}-{k}',
                'meta_data': f'{{"store": "fs{k}"}}',
                'created_at': T0, 'updated_at': T0,
                'deleted_at': T0 if k == 2 else None, 'deleted': k == 2})
    with engine.begin() as conn:
        conn.execute(sa.text(
            'INSERT INTO images (id, name, size, status, created_at, '
            'updated_at, deleted_at, deleted, disk_format, container_format, '
            'owner, min_disk, min_ram, protected, visibility, os_hidden) '
            'VALUES (:id, :name, :size, :status, :created_at, :updated_at, '
            ':deleted_at, :deleted, :disk_format, :container_format, :owner, '
            ':min_disk, :min_ram, :protected, :visibility, :os_hidden)'),
            images)
        conn.execute(sa.text(
            'INSERT INTO image_locations (image_id, value, meta_data, '
            'created_at, updated_at, deleted_at, deleted) VALUES (:image_id, '
            ':value, :meta_data, :created_at, :updated_at, :deleted_at, '
            ':deleted)'), locations)
    return locations


def location_rows(engine):
    """Every location row (typed through reflection), with its image's
    status as ``image_status``."""
    with engine.connect() as conn:
        meta = sa.MetaData()
        loc = sa.Table('image_locations', meta, autoload_with=conn)
        img = sa.Table('images', meta, autoload_with=conn)
        return [dict(row._mapping) for row in conn.execute(
            sa.select(loc, img.c.status.label('image_status'))
            .join(img, img.c.id == loc.c.image_id).order_by(loc.c.id))]


def alembic_versions(engine):
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            'SELECT version_num FROM alembic_version'))]


def test_upgrade_maps_every_location_from_its_image(database_url, conf_file):
    engine = engine_for(database_url)
    upgrade_in_process(database_url, PREVIOUS)
    assert alembic_versions(engine) == [PREVIOUS]
    columns = {c['name'] for c in sa.inspect(engine).get_columns(
        'image_locations')}
    assert 'status' not in columns, 'the previous revision has no status'
    inserted = load_previous_revision_rows(engine)

    output = ok(manage(conf_file, 'db', 'sync'))

    assert alembic_versions(engine) == [migration.head()]
    rows = location_rows(engine)
    assert len(rows) == len(inserted) == 3 * len(EXPECTED)
    for row, before in zip(rows, inserted):
        # Nothing but the status was touched.
        for key, value in before.items():
            got = bool(row[key]) if key == 'deleted' else row[key]
            assert got == value, (key, row, before)
        assert row['status'] == EXPECTED[row['image_status']], row
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text(
            'SELECT id, status FROM images')).all()) == sorted(
            (image_id_for(status), status) for status in EXPECTED)

    # The unknown status is named in a warning, with its image; no known
    # status is warned about.
    warnings = [line for line in output.splitlines() if 'WARNING' in line]
    unknown = image_id_for(UNKNOWN_STATUS)
    assert any(unknown in line and UNKNOWN_STATUS in line
               for line in warnings), output
    for status in EXPECTED:
        if status != UNKNOWN_STATUS:
            assert not any(image_id_for(status) in line
                           for line in warnings), output


def test_status_column_and_index(database_url):
    engine = engine_for(database_url)
    upgrade_in_process(database_url)
    inspector = sa.inspect(engine)
    column = {c['name']: c for c in inspector.get_columns(
        'image_locations')}['status']
    assert isinstance(column['type'], sa.String), column
    assert column['type'].length == 30, column
    assert column['nullable'] is False, column
    assert 'active' in str(column['default']), column
    indexes = {i['name']: i for i in inspector.get_indexes('image_locations')}
    assert INDEX in indexes, indexes
    assert indexes[INDEX]['column_names'] == ['status', 'image_id']

    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO images (id, status, created_at, deleted, min_disk, "
            "min_ram, protected, visibility, os_hidden) VALUES ('i1', "
            "'active', :t, :f, 0, 0, :f, 'private', :f)"),
            {'t': T0, 'f': False})
        # Plain SQL without the column: the server default applies.
        conn.execute(sa.text(
            "INSERT INTO image_locations (image_id, value, meta_data, "
            "created_at, deleted) VALUES ('i1', 'file:///x', '{}', :t, :f)"),
            {'t': T0, 'f': False})
        assert conn.execute(sa.text(
            'SELECT status FROM image_locations')).scalar_one() == 'active'
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text(
                "INSERT INTO image_locations (image_id, value, meta_data, "
                "created_at, deleted, status) VALUES ('i1', 'file:///y', "
                "'{}', :t, :f, NULL)"), {'t': T0, 'f': False})


def test_failed_upgrade_leaves_the_previous_revision(database_url, conf_file):
    """The migration is all or nothing where DDL is transactional: when its
    last step fails, the column and the mapped statuses are rolled back and
    the database stays at the previous revision; fixing the cause and
    running again succeeds."""
    if database_url.startswith('mysql'):
        pytest.skip('MariaDB commits each DDL statement: no rollback')
    engine = engine_for(database_url)
    upgrade_in_process(database_url, PREVIOUS)
    inserted = load_previous_revision_rows(engine)
    # Index names are per schema on SQLite and PostgreSQL: one of the same
    # name on another table makes the migration's CREATE INDEX fail.
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE INDEX {INDEX} ON images (status)'))

    failed = manage(conf_file, 'db', 'sync')

    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert alembic_versions(engine) == [PREVIOUS]
    columns = {c['name'] for c in sa.inspect(engine).get_columns(
        'image_locations')}
    assert 'status' not in columns
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            'SELECT COUNT(*) FROM image_locations')).scalar() == len(inserted)

    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP INDEX {INDEX}'))
    upgrade_in_process(database_url)
    rows = location_rows(engine)
    assert [r['status'] for r in rows] == [
        EXPECTED[r['image_status']] for r in rows]


# --- the scrubber's queue uses the index ---------------------------------

N_IMAGES = 2000
LOCATIONS_PER_IMAGE = 10
N_PENDING_IMAGES = 10


def fill_for_queue(engine):
    """20,000 locations: most active or deleted, a few pending_delete."""
    images, locations = [], []
    for n in range(N_IMAGES):
        image_id = f'q{n:035d}'
        if n < N_PENDING_IMAGES:
            status, loc_status = 'pending_delete', 'pending_delete'
        elif n % 3 == 0:
            status, loc_status = 'deleted', 'deleted'
        else:
            status, loc_status = 'active', 'active'
        gone = status != 'active'
        images.append({'id': image_id, 'status': status, 'created_at': T0,
                       'deleted': gone, 'deleted_at': T0 if gone else None,
                       'visibility': ('public', 'private', 'shared',
                                      'community')[n % 4],
                       'owner': f'p{n % 7}'})
        for k in range(LOCATIONS_PER_IMAGE):
            locations.append({'image_id': image_id,
                              'value': f'file:///s/{image_id}-{k}',
                              'status': loc_status, 'created_at': T0,
                              'deleted': gone,
                              'deleted_at': T0 if gone else None})
    with engine.begin() as conn:
        # Reflected tables: executemany becomes multi-row INSERTs.
        meta = sa.MetaData()
        conn.execute(sa.Table('images', meta, autoload_with=conn).insert(),
                     [dict(row, min_disk=0, min_ram=0, protected=False,
                           os_hidden=False) for row in images])
        conn.execute(sa.Table('image_locations', meta,
                              autoload_with=conn).insert(),
                     [dict(row, meta_data='{}') for row in locations])
        # Statistics, as a production database has them.
        conn.execute(sa.text('ANALYZE TABLE images, image_locations'
                             if engine.dialect.name == 'mysql' else 'ANALYZE'))


def call_queue(deleted_before, limit):
    """db_api.pending_delete_locations with whatever claim argument it
    takes (the scrubber added one)."""
    kwargs = {}
    params = inspect.signature(db_api.pending_delete_locations).parameters
    if 'stale_claims_before' in params:
        kwargs['stale_claims_before'] = deleted_before
    return db_api.pending_delete_locations(deleted_before, limit, **kwargs)


def test_queue_query_uses_the_status_index(db):
    engine = db_api.get_engine()
    fill_for_queue(engine)
    captured = []

    def capture(conn, cursor, statement, parameters, context, many):
        if 'image_locations' in statement and statement.lstrip().upper(
                ).startswith('SELECT'):
            captured.append((statement, parameters))

    sa.event.listen(engine, 'before_cursor_execute', capture)
    try:
        queue = call_queue(datetime.datetime(2030, 1, 1), 1000)
    finally:
        sa.event.remove(engine, 'before_cursor_execute', capture)
    assert len(queue) == N_PENDING_IMAGES * LOCATIONS_PER_IMAGE
    assert len(captured) == 1, captured
    statement, parameters = captured[0]

    name = engine.dialect.name
    explain = {'sqlite': 'EXPLAIN QUERY PLAN ', 'mysql': 'EXPLAIN ',
               'postgresql': 'EXPLAIN '}[name]
    with engine.connect() as conn:
        plan = [dict(row) for row in conn.exec_driver_sql(
            explain + statement, parameters).mappings()]
    text = '\n'.join(' | '.join(str(v) for v in row.values())
                     for row in plan)
    assert INDEX in text, text
    if name == 'mysql':
        # The locations table is reached through the index, not scanned.
        [locations] = [row for row in plan
                       if str(row['table']).startswith('image_locations')]
        assert locations['key'] == INDEX, text
        assert locations['type'] != 'ALL', text
    elif name == 'postgresql':
        assert 'Seq Scan on image_locations' not in text, text
    else:
        assert 'SCAN image_locations' not in text, text
