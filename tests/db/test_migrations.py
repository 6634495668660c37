"""The migrated schema on SQLite, MariaDB and PostgreSQL, via glance-manage.

Each test gets a fresh database of each kind (``database_url``) and runs
the real ``glance-manage`` command on it; the schema is then read back
with SQLAlchemy and compared with the models and with upstream's facts
(reference §2).
"""

import re

from alembic import autogenerate
from alembic import migration as alembic_migration
import pytest
import sqlalchemy as sa

from glance.db import migration
from glance.db import models
from tests.conftest import DB_KINDS
from tests.conftest import new_database
from tests.conftest import sync_database
from tests.helpers import assert_one_line_error
from tests.helpers import run_command
from tests.helpers import write_conf

# Upstream's tables at its head (reference §2); later revisions may add.
UPSTREAM_TABLES = {
    'images', 'image_properties', 'image_locations', 'image_members',
    'image_tags', 'tasks', 'task_info', 'metadef_namespaces',
    'metadef_resource_types', 'metadef_namespace_resource_types',
    'metadef_objects', 'metadef_properties', 'metadef_tags',
    'node_reference', 'cached_images', 'alembic_version',
}

# Non-unique indexes by table (reference §2).
UPSTREAM_INDEXES = {
    'images': {'checksum_image_idx', 'ix_images_deleted', 'owner_image_idx',
               'created_at_image_idx', 'updated_at_image_idx',
               'visibility_image_idx', 'os_hidden_image_idx',
               'os_hash_value_image_idx'},
    'image_properties': {'ix_image_properties_image_id',
                         'ix_image_properties_deleted'},
    'image_locations': {'ix_image_locations_image_id',
                        'ix_image_locations_deleted'},
    'image_members': {'ix_image_members_deleted', 'ix_image_members_image_id',
                      'ix_image_members_image_id_member'},
    'image_tags': {'ix_image_tags_image_id',
                   'ix_image_tags_image_id_tag_value'},
    'tasks': {'ix_tasks_type', 'ix_tasks_status', 'ix_tasks_owner',
              'ix_tasks_deleted', 'ix_tasks_updated_at', 'ix_tasks_image_id'},
    'metadef_namespaces': {'ix_metadef_namespaces_owner'},
    'metadef_namespace_resource_types': {
        'ix_metadef_ns_res_types_namespace_id'},
    'metadef_objects': {'ix_metadef_objects_name'},
    'metadef_properties': {'ix_metadef_properties_name'},
    'metadef_tags': {'ix_metadef_tags_name'},
}

# Unique constraints by table: name -> columns (reference §2).
UPSTREAM_UNIQUES = {
    'image_properties': {
        'ix_image_properties_image_id_name': ['image_id', 'name']},
    'image_members': {
        'image_members_image_id_member_deleted_at_key':
            ['image_id', 'member', 'deleted_at']},
    'metadef_namespaces': {'uq_metadef_namespaces_namespace': ['namespace']},
    'metadef_resource_types': {'uq_metadef_resource_types_name': ['name']},
    'metadef_objects': {
        'uq_metadef_objects_namespace_id_name': ['namespace_id', 'name']},
    'metadef_properties': {
        'uq_metadef_properties_namespace_id_name': ['namespace_id', 'name']},
    'metadef_tags': {
        'uq_metadef_tags_namespace_id_name': ['namespace_id', 'name']},
    'node_reference': {
        'uq_node_reference_node_reference_url': ['node_reference_url']},
    'cached_images': {
        'ix_cached_images_image_id_node_reference_id':
            ['image_id', 'node_reference_id']},
}


@pytest.fixture
def conf_file(database_url, tmp_path):
    """A glance-manage config file for the test's fresh database."""
    return write_conf(tmp_path / 'glance-manage.conf',
                      {'database': {'connection': database_url}})


def manage(conf_file, *args):
    return run_command('manage', conf_file, *args)


def ok(result):
    """The command's stdout, after checking it succeeded."""
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return result.stdout


@pytest.fixture
def head():
    """The head revision of our migrations (read per test: the chain may
    grow while the suite is being written)."""
    return migration.head()


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope='module', params=DB_KINDS)
def synced_once(request, db_servers, tmp_path_factory):
    """The engine of a database brought to head by ``glance-manage db
    sync``, made once per module and kind, for tests that only read the
    schema."""
    directory = tmp_path_factory.mktemp('synced')
    url, drop = new_database(request.param, db_servers, directory)
    conf = write_conf(directory / 'glance-manage.conf',
                      {'database': {'connection': url}})
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        ok(manage(conf, 'db', 'sync'))
        yield engine
    finally:
        engine.dispose()
        if drop:
            drop()


def _compare_server_default(context, inspected_column, metadata_column,
                            inspected_default, metadata_default,
                            rendered_metadata_default):
    """MySQL stores a boolean FALSE/TRUE default as '0'/'1'.

    alembic renders ``sa.false()`` as ``false`` and compares that text with
    MariaDB's ``'0'``, which reports a difference that isn't one. Normalise
    exactly that case; every other default goes through alembic's own
    comparison (None).
    """
    if (context.dialect.name == 'mysql'
            and isinstance(metadata_column.type, sa.Boolean)
            and rendered_metadata_default in ('false', 'true')):
        as_int = '0' if rendered_metadata_default == 'false' else '1'
        return (inspected_default or '').strip("'") != as_int
    return None


def schema_differences(engine):
    """What alembic's autogenerate would change to make the DB the models.
    """
    with engine.connect() as conn:
        context = alembic_migration.MigrationContext.configure(
            conn, opts={'compare_type': True,
                        'compare_server_default': _compare_server_default})
        return autogenerate.compare_metadata(context, models.Base.metadata)


def dump_schema(engine):
    """Everything ``db sync`` could change, as comparable text."""
    lines = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in sorted(inspector.get_table_names()):
            lines.append('table %s %s' % (
                table, sorted(inspector.get_table_options(table).items())))
            for column in inspector.get_columns(table):
                lines.append('  column %s' % sorted(
                    (k, str(v)) for k, v in column.items()))
            for kind in ('pk_constraint', 'foreign_keys', 'indexes',
                         'unique_constraints', 'check_constraints'):
                lines.append('  %s %s' % (kind, getattr(
                    inspector, 'get_' + kind)(table)))
        name = engine.dialect.name
        if name == 'sqlite':
            rows = conn.exec_driver_sql(
                'SELECT type, name, tbl_name, sql FROM sqlite_master '
                'ORDER BY type, name')
            lines += [repr(tuple(row)) for row in rows]
        elif name == 'mysql':
            for table in sorted(inspector.get_table_names()):
                ddl = conn.exec_driver_sql(
                    'SHOW CREATE TABLE `%s`' % table).one()[1]
                # The next AUTO_INCREMENT value is data, not schema.
                lines.append(re.sub(r' AUTO_INCREMENT=\d+', '', ddl))
        elif name == 'postgresql':
            lines += [repr(tuple(row)) for row in conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' ORDER BY indexname")]
            lines += [repr(tuple(row)) for row in conn.exec_driver_sql(
                "SELECT conrelid::regclass::text, conname, "
                "pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace "
                "ORDER BY 1, 2")]
            lines += [repr(tuple(row)) for row in conn.exec_driver_sql(
                "SELECT t.typname, e.enumsortorder, e.enumlabel "
                "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "ORDER BY 1, 2")]
        if 'alembic_version' in inspector.get_table_names():
            rows = conn.exec_driver_sql(
                'SELECT version_num FROM alembic_version ORDER BY 1')
            lines += ['alembic_version %s' % row[0] for row in rows]
    return '\n'.join(lines)


def test_sync_makes_the_schema_of_the_models(synced_once):
    assert schema_differences(synced_once) == []


def test_comparison_sees_a_difference(database_url, engine):
    """The comparison above is not vacuous: a missing index shows."""
    sync_database(database_url)
    synced = engine
    with synced.begin() as conn:
        conn.execute(sa.text('DROP INDEX owner_image_idx' + (
            ' ON images' if synced.dialect.name == 'mysql' else '')))
    differences = schema_differences(synced)
    assert [d[0] for d in differences] == ['add_index'], differences
    assert differences[0][1].name == 'owner_image_idx'


def test_version_check_and_idempotent_sync(conf_file, engine, head):
    check = manage(conf_file, 'db', 'check')
    assert check.returncode == 3, check.stdout + check.stderr
    assert 'Traceback' not in check.stderr
    assert head in check.stdout

    assert 'synced successfully' in ok(manage(conf_file, 'db', 'sync'))
    assert ok(manage(conf_file, 'db', 'version')).split() == [head]
    assert 'up to date' in ok(manage(conf_file, 'db', 'check'))

    schema = dump_schema(engine)
    assert 'alembic_version %s' % head in schema
    ok(manage(conf_file, 'db', 'sync'))
    assert dump_schema(engine) == schema


def test_upgrade_to_unknown_revision_fails_in_one_line(conf_file, engine):
    for args in (['nosuchrev'], ['--version', 'nosuchrev']):
        result = manage(conf_file, 'db', 'upgrade', *args)
        assert_one_line_error(result, 'nosuchrev')
    # Nothing was created.
    assert sa.inspect(engine).get_table_names() == []
    assert 'db sync' in ok(manage(conf_file, 'db', 'version'))


def test_upgrade_to_explicit_head(conf_file, engine, head):
    ok(manage(conf_file, 'db', 'upgrade', head))
    assert list(migration.current_revisions(engine)) == [head]
    schema = dump_schema(engine)
    ok(manage(conf_file, 'db', 'upgrade', '--version', head))
    assert dump_schema(engine) == schema
    assert schema_differences(engine) == []


def test_legacy_spellings(conf_file, head):
    assert manage(conf_file, 'db_check').returncode == 3
    assert 'synced successfully' in ok(manage(conf_file, 'db_sync'))
    assert ok(manage(conf_file, 'db_version')).split() == [head]
    ok(manage(conf_file, 'db_upgrade', head))


def test_in_process_upgrade(database_url, engine, head):
    """glance.db.migration on an engine, as the test fixtures use it."""
    assert list(migration.current_revisions(engine)) == []
    assert migration.pending_revisions(engine)[-1] == head
    sync_database(database_url)
    sync_database(database_url)
    assert list(migration.current_revisions(engine)) == [head]
    assert migration.pending_revisions(engine) == []
    assert schema_differences(engine) == []


def test_upstream_tables_indexes_and_constraints(synced_once):
    inspector = sa.inspect(synced_once)
    assert UPSTREAM_TABLES <= set(inspector.get_table_names())
    for table, expected in UPSTREAM_INDEXES.items():
        names = {i['name'] for i in inspector.get_indexes(table)
                 if not i['unique']}
        assert expected <= names, table
    for table, expected in UPSTREAM_UNIQUES.items():
        found = {u['name']: u['column_names']
                 for u in inspector.get_unique_constraints(table)}
        for name, columns in expected.items():
            assert found.get(name) == columns, (table, found)


def _columns(inspector, table):
    return {c['name']: c for c in inspector.get_columns(table)}


def test_upstream_column_facts(synced_once):
    synced = synced_once
    inspector = sa.inspect(synced)
    dialect = synced.dialect.name
    images = _columns(inspector, 'images')

    assert "'shared'" in images['visibility']['default']
    assert images['visibility']['nullable'] is False
    for flag in ('protected', 'os_hidden'):
        assert images[flag]['nullable'] is False
        assert images[flag]['default'].strip("'").lower() in ('0', 'false')
    assert images['id']['type'].length == 36
    assert images['os_hash_algo']['type'].length == 64
    assert images['os_hash_value']['type'].length == 128
    assert isinstance(images['size']['type'], sa.BigInteger)
    assert images['min_disk']['nullable'] is False
    assert images['deleted']['nullable'] is False
    assert images['created_at']['nullable'] is False
    assert images['updated_at']['nullable'] is True

    members = _columns(inspector, 'image_members')
    assert "'pending'" in members['status']['default']
    assert members['status']['type'].length == 20

    assert inspector.get_pk_constraint('images')['constrained_columns'] == [
        'id']
    assert inspector.get_pk_constraint(
        'metadef_namespace_resource_types')['constrained_columns'] == [
        'resource_type_id', 'namespace_id']
    for table in ('image_properties', 'image_locations', 'image_members',
                  'image_tags'):
        fks = inspector.get_foreign_keys(table)
        assert [(fk['constrained_columns'], fk['referred_table'],
                 fk['referred_columns']) for fk in fks] == [
            (['image_id'], 'images', ['id'])], table

    if dialect == 'postgresql':
        enums = {e['name']: e['labels'] for e in inspector.get_enums()}
        assert enums['image_visibility'] == ['private', 'public', 'shared',
                                             'community']
        assert images['visibility']['type'].name == 'image_visibility'
    elif dialect == 'mysql':
        assert list(images['visibility']['type'].enums) == [
            'private', 'public', 'shared', 'community']
        with synced.connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT table_name, engine, table_collation '
                'FROM information_schema.tables '
                'WHERE table_schema = DATABASE()')).all()
        assert rows
        for table, engine, collation in rows:
            if table == 'alembic_version':
                # alembic's own table takes the database's defaults.
                continue
            assert engine == 'InnoDB', table
            # utf8 is utf8mb3 on MariaDB 10.6 and later.
            assert collation.startswith(('utf8_', 'utf8mb3_')), (
                table, collation)
        # No fractional seconds, as upstream's DATETIME.
        assert str(images['created_at']['type']) == 'DATETIME'
    elif dialect == 'sqlite':
        assert images['visibility']['type'].length == 9


def test_upgrade_one_revision_at_a_time(conf_file, engine, head):
    revisions = migration.pending_revisions(engine)
    assert revisions[-1] == head
    for revision in revisions:
        ok(manage(conf_file, 'db', 'upgrade', revision))
        assert list(migration.current_revisions(engine)) == [revision]
        if revision == revisions[0] != head:
            check = manage(conf_file, 'db', 'check')
            assert check.returncode == 3, check.stdout + check.stderr
    assert migration.pending_revisions(engine) == []
    assert schema_differences(engine) == []
