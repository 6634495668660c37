"""Adopting a database made by upstream Glance (2024.1 schema).

The database is built by upstream's own ``glance-manage db sync`` (glance
33.0.0 from PyPI, in a virtualenv of its own), filled with plain SQL
(images in several statuses and visibilities, properties, tags, members,
locations pointing at real files, a task, a metadef namespace), then synced
by our ``glance-manage``: every row must survive with its values, ``db
version`` must print our head, and our glance-api must serve the images.
A database at a revision neither we nor upstream know, or at an upstream
revision older than its 2024.1 head, is refused and left untouched.

The upstream virtualenv: ``$GLANCE_UPSTREAM_VENV`` if set, else
``$GLANCE_TEST_CACHE/upstream-venv`` (default
``~/.cache/glance-tests/upstream-venv``), made there on first use with
``python -m venv`` + ``pip install glance==33.0.0 PyMySQL psycopg2-binary``
(about 70 s on 2 cores, once; reused afterwards).
"""

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from alembic import script as alembic_script
import pytest
import sqlalchemy as sa

from glance.db import migration
from tests.conftest import require, sync_database
from tests.functional import conftest as functional_conftest
from tests.functional.helpers import Api
from tests.helpers import assert_one_line_error, run_command, write_conf

UPSTREAM_VERSION = '33.0.0'
UPSTREAM_HEAD = '2024_1_contract01'
UPSTREAM_PACKAGES = [f'glance=={UPSTREAM_VERSION}', 'PyMySQL',
                     'psycopg2-binary']
COMPLETE_MARK = '.glance-tests-complete'
# Modules the upstream venv needs for each kind of database.
DRIVERS = {'sqlite': [], 'mariadb': ['pymysql'], 'postgresql': ['psycopg2']}


# --- upstream glance, in a virtualenv of its own --------------------------

def _cache_dir():
    base = os.environ.get('GLANCE_TEST_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'glance-tests')
    return os.path.join(base, 'upstream-venv')


def _venv_env():
    """Our environment minus what would make upstream import our code."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')}
    env['PYTHONWARNINGS'] = 'ignore'
    return env


def _has_everything(venv):
    python = os.path.join(venv, 'bin', 'python')
    if not os.path.exists(os.path.join(venv, 'bin', 'glance-manage')):
        return False
    modules = sorted({m for mods in DRIVERS.values() for m in mods})
    check = ('import importlib.metadata as m, sys; '
             f'import {", ".join(modules)}; '
             "sys.exit(m.version('glance') != %r)" % UPSTREAM_VERSION)
    try:
        # -I: not the working directory (our checkout holds a 'glance').
        return subprocess.run([python, '-I', '-c', check], check=False,
                              capture_output=True, env=_venv_env(),
                              timeout=120, cwd=venv,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _build_venv(venv):
    """python -m venv + pip install, under a lock (xdist workers)."""
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    with open(venv + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(venv, COMPLETE_MARK)):
            return
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        steps = [[sys.executable, '-m', 'venv', venv],
                 [os.path.join(venv, 'bin', 'pip'), 'install', '-q',
                  *UPSTREAM_PACKAGES]]
        for step in steps:
            try:
                result = subprocess.run(step, check=False,
                                        capture_output=True, text=True,
                                        env=_venv_env(), timeout=1200,
                                        cwd=os.path.dirname(venv),
                                        stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as e:
                shutil.rmtree(venv, ignore_errors=True)
                require(False, f'cannot make the upstream venv: {e}')
            if result.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                output = (result.stdout + result.stderr)[-3000:]
                require(False, f'cannot make the upstream venv '
                        f'({" ".join(step[:3])}):\n{output}')
        with open(os.path.join(venv, COMPLETE_MARK), 'w') as f:
            f.write(f'built in {time.monotonic() - started:.0f}s\n')


@pytest.fixture(scope='session')
def upstream_venv():
    """Path of a virtualenv with upstream glance 33.0.0 and DB drivers."""
    explicit = os.environ.get('GLANCE_UPSTREAM_VENV')
    if explicit:
        require(_has_everything(explicit),
                f'GLANCE_UPSTREAM_VENV={explicit} lacks glance '
                f'{UPSTREAM_VERSION}, PyMySQL or psycopg2')
        return explicit
    cached = _cache_dir()
    if os.path.exists(os.path.join(cached, COMPLETE_MARK)) and (
            _has_everything(cached)):
        return cached
    _build_venv(cached)
    require(_has_everything(cached), f'{cached}: upstream glance unusable')
    return cached


def upstream_manage(venv, conf_file, *args):
    return subprocess.run(
        [os.path.join(venv, 'bin', 'glance-manage'), '--config-file',
         conf_file, *args], check=False, capture_output=True, text=True,
        timeout=600, env=_venv_env(), cwd=venv, stdin=subprocess.DEVNULL)


def build_upstream_database(venv, url, work_dir):
    """An empty database at upstream's head, made by upstream itself."""
    conf = write_conf(os.path.join(work_dir, 'upstream-manage.conf'),
                      {'database': {'connection': url}})
    result = upstream_manage(venv, conf, 'db', 'sync')
    assert result.returncode == 0, result.stdout + result.stderr
    assert alembic_versions(url) == [UPSTREAM_HEAD]


# The real glance-api, as the functional tests start it.
start_glance = functional_conftest.start_glance


# --- the data ---------------------------------------------------------------

T0 = datetime.datetime(2024, 3, 1, 10, 0, 0)
T1 = datetime.datetime(2024, 3, 2, 11, 30, 0)
OWNER = 'project-owner'
MEMBER = 'project-member'


def _image_id(n):
    return f'0da7a000-0000-4000-8000-{n:012d}'


# name -> (status, visibility, deleted, has data)
IMAGES = {
    'public-active': ('active', 'public', False, True),
    'private-active': ('active', 'private', False, True),
    'shared-active': ('active', 'shared', False, True),
    'community-active': ('active', 'community', False, True),
    'queued': ('queued', 'private', False, False),
    'deactivated': ('deactivated', 'private', False, True),
    'killed': ('killed', 'private', False, False),
    'pending-delete': ('pending_delete', 'private', True, True),
    'deleted': ('deleted', 'public', True, True),
}
IDS = {name: _image_id(n) for n, name in enumerate(IMAGES)}
# What the API lists: undeleted and not killed.
LISTED = {name for name, (status, _v, deleted, _d) in IMAGES.items()
          if not deleted and status != 'killed'}


def image_data(name):
    return (f'data of {name} '.encode() * 50)[:600]


def fill(url, store_dir):
    """Plain SQL rows of every kind; data files for images with data."""
    images, props, tags, members, locations = [], [], [], [], []
    for name, (status, visibility, deleted, has_data) in IMAGES.items():
        image_id = IDS[name]
        data = image_data(name) if has_data else None
        images.append({
            'id': image_id, 'name': name, 'size': len(data) if data else None,
            'status': status, 'created_at': T0, 'updated_at': T1,
            'deleted_at': T1 if deleted else None, 'deleted': deleted,
            'disk_format': 'raw', 'container_format': 'bare',
            'checksum': hashlib.md5(data).hexdigest() if data else None,
            'owner': OWNER, 'min_disk': 1, 'min_ram': 64,
            'protected': False, 'virtual_size': None,
            'visibility': visibility, 'os_hidden': False,
            'os_hash_algo': 'sha512' if data else None,
            'os_hash_value': hashlib.sha512(data).hexdigest() if data
            else None})
        props += [
            {'image_id': image_id, 'name': 'hw_disk_bus', 'value': 'virtio',
             'created_at': T0, 'updated_at': T0, 'deleted_at': None,
             'deleted': False},
            {'image_id': image_id, 'name': 'os_distro', 'value': name,
             'created_at': T0, 'updated_at': T0, 'deleted_at': None,
             'deleted': False},
            {'image_id': image_id, 'name': 'gone_property', 'value': 'x',
             'created_at': T0, 'updated_at': T1, 'deleted_at': T1,
             'deleted': True}]
        tags += [
            {'image_id': image_id, 'value': tag, 'created_at': T0,
             'updated_at': T0, 'deleted_at': T1 if gone else None,
             'deleted': gone}
            for tag, gone in (('ubuntu', False), (name, False),
                              ('old-tag', True))]
        if data is not None:
            path = os.path.join(store_dir, image_id)
            with open(path, 'wb') as f:
                f.write(data)
            loc_status = {'pending_delete': 'pending_delete',
                          'deleted': 'deleted'}.get(status, 'active')
            locations.append({
                'image_id': image_id, 'value': f'file://{path}',
                'meta_data': '{}', 'status': loc_status, 'created_at': T0,
                'updated_at': T0, 'deleted_at': T1 if deleted else None,
                'deleted': loc_status != 'active'})
    members += [
        {'image_id': IDS['shared-active'], 'member': MEMBER,
         'can_share': False, 'status': 'accepted', 'created_at': T0,
         'updated_at': T0, 'deleted_at': None, 'deleted': False},
        {'image_id': IDS['shared-active'], 'member': 'project-pending',
         'can_share': False, 'status': 'pending', 'created_at': T0,
         'updated_at': T0, 'deleted_at': None, 'deleted': False},
        {'image_id': IDS['shared-active'], 'member': 'project-removed',
         'can_share': False, 'status': 'accepted', 'created_at': T0,
         'updated_at': T1, 'deleted_at': T1, 'deleted': True}]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table, values in (('images', images),
                                  ('image_properties', props),
                                  ('image_tags', tags),
                                  ('image_members', members),
                                  ('image_locations', locations)):
                columns = list(values[0])
                conn.execute(sa.text(
                    f'INSERT INTO {table} ({", ".join(columns)}) VALUES '
                    f'({", ".join(":" + c for c in columns)})'), values)
            conn.execute(sa.text(
                "INSERT INTO tasks (id, type, status, owner, expires_at, "
                "created_at, updated_at, deleted, image_id, request_id, "
                "user_id) VALUES ('7a5c0000-0000-4000-8000-000000000001', "
                "'import', 'success', :owner, :t1, :t0, :t1, :f, :image, "
                "'req-1', 'user-1')"),
                {'owner': OWNER, 't0': T0, 't1': T1, 'f': False,
                 'image': IDS['public-active']})
            conn.execute(sa.text(
                "INSERT INTO task_info (task_id, input, result, message) "
                "VALUES ('7a5c0000-0000-4000-8000-000000000001', :i, :r, "
                "'done')"), {'i': json.dumps({'import_from': 'x'}),
                             'r': json.dumps({'image_id': 'y'})})
            conn.execute(sa.text(
                "INSERT INTO metadef_namespaces (namespace, display_name, "
                "description, visibility, protected, owner, created_at, "
                "updated_at) VALUES ('OS::Test', 'Test', 'adopted', "
                "'public', :f, 'admin', :t0, NULL)"), {'f': False, 't0': T0})
    finally:
        engine.dispose()


# --- reading the database ---------------------------------------------------

def alembic_versions(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text(
                'SELECT version_num FROM alembic_version')))
    finally:
        engine.dispose()


def set_alembic_version(url, revision):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text('UPDATE alembic_version SET version_num = '
                                 ':r'), {'r': revision})
    finally:
        engine.dispose()


def snapshot(url, tables=None):
    """Every row of every table (but alembic_version), typed, in key
    order: {table: [tuple, ...]}."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn)
            found = {}
            for name, table in sorted(meta.tables.items()):
                if name == 'alembic_version' or (
                        tables is not None and name not in tables):
                    continue
                key = list(table.primary_key.columns) or list(table.columns)
                found[name] = [tuple(row) for row in conn.execute(
                    sa.select(table).order_by(*key))]
            return found
    finally:
        engine.dispose()


def schema_text(url):
    """The schema as the database states it (for 'left untouched')."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            name = engine.dialect.name
            if name == 'mysql':
                return [conn.execute(sa.text(
                    f'SHOW CREATE TABLE `{t}`')).one()[1]
                    for t in sorted(sa.inspect(conn).get_table_names())]
            if name == 'postgresql':
                return [tuple(r) for r in conn.execute(sa.text(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = 'public' ORDER BY 1, 2"))] + [
                    tuple(r) for r in conn.execute(sa.text(
                        "SELECT table_name, column_name, data_type, "
                        "is_nullable, column_default FROM "
                        "information_schema.columns WHERE table_schema = "
                        "'public' ORDER BY 1, 2"))]
            return [tuple(r) for r in conn.execute(sa.text(
                'SELECT type, name, sql FROM sqlite_master ORDER BY 1, 2'))]
    finally:
        engine.dispose()


def file_state(path):
    """Hash of a SQLite file and the names beside it (-wal, -shm...)."""
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return digest, sorted(os.listdir(os.path.dirname(path)))


def manage(conf_file, *args):
    return run_command('manage', conf_file, *args)


def our_conf(tmp_path, url):
    return write_conf(tmp_path / 'glance-manage.conf',
                      {'database': {'connection': url}})


# --- fixtures ---------------------------------------------------------------

@pytest.fixture(scope='session')
def upstream_sqlite(upstream_venv, tmp_path_factory):
    """(path, store dir) of a filled upstream SQLite database, built once;
    tests work on copies of the file (the store is only read)."""
    work = tmp_path_factory.mktemp('upstream-sqlite')
    store = work / 'store'
    store.mkdir()
    path = work / 'upstream.sqlite'
    url = f'sqlite:///{path}'
    build_upstream_database(upstream_venv, url, str(work))
    fill(url, str(store))
    return path, store


@pytest.fixture
def sqlite_copy(upstream_sqlite, tmp_path):
    """A private copy of the upstream SQLite database: (url, path, store).
    """
    template, store = upstream_sqlite
    db_dir = tmp_path / 'db'
    db_dir.mkdir()
    path = db_dir / 'glance.sqlite'
    shutil.copyfile(template, path)
    return f'sqlite:///{path}', path, store


@pytest.fixture
def upstream_database(request, upstream_venv, new_database_url, tmp_path,
                      upstream_sqlite):
    """Per kind: (url, store dir) of a filled database made by upstream."""
    kind = request.param
    if kind == 'sqlite':
        template, store = upstream_sqlite
        path = tmp_path / 'adopted.sqlite'
        shutil.copyfile(template, path)
        return f'sqlite:///{path}', store
    missing = [m for m in DRIVERS[kind] if not _importable(m)]
    require(not missing, f'no {missing} in this venv')
    url = new_database_url(kind)
    store = tmp_path / 'store'
    store.mkdir()
    build_upstream_database(upstream_venv, url, str(tmp_path))
    fill(url, str(store))
    return url, store


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# --- adoption ---------------------------------------------------------------

@pytest.mark.parametrize('upstream_database',
                         ['sqlite', 'mariadb', 'postgresql'],
                         indirect=True)
def test_upstream_database_is_adopted_and_served(upstream_database, tmp_path,
                                                 start_glance):
    url, store = upstream_database
    before = snapshot(url)
    assert len(before['images']) == len(IMAGES)
    conf = our_conf(tmp_path, url)

    synced = manage(conf, 'db', 'sync')

    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert 'Traceback' not in synced.stderr, synced.stderr
    version = manage(conf, 'db', 'version')
    assert version.returncode == 0, version.stderr
    assert version.stdout.split() == [migration.head()]
    assert 'location_status01' in alembic_chain()
    assert alembic_versions(url) == [migration.head()]
    assert UPSTREAM_HEAD not in version.stdout
    check = manage(conf, 'db', 'check')
    assert check.returncode == 0, check.stdout + check.stderr
    # Every row is still there with the same values.
    assert snapshot(url, tables=set(before)) == before
    index_names = {i['name'] for i in sa.inspect(
        sa.create_engine(url, poolclass=sa.pool.NullPool)).get_indexes(
        'image_locations')}
    assert 'ix_image_locations_status_image_id' in index_names

    server = start_glance(
        options={'DEFAULT': {'show_multiple_locations': True,
                             'show_image_direct_url': True},
                 'glance_store': {'filesystem_store_datadir': str(store)}},
        database_url=url)
    check_served(server, store)
    # Serving it, after the server's own sync (a second one), changed no
    # row either.
    assert snapshot(url, tables=set(before)) == before
    assert alembic_versions(url) == [migration.head()]


def alembic_chain():
    scripts = alembic_script.ScriptDirectory(migration.MIGRATIONS_DIR)
    return [s.revision for s in scripts.walk_revisions()]


def check_served(server, store):
    admin = Api(server)
    listed = {i['name']: i for i in admin.list_all('?visibility=all')}
    ours = {name: image for name, image in listed.items() if name in IMAGES}
    assert set(ours) == LISTED, sorted(ours)
    for name, image in ours.items():
        status, visibility, _deleted, has_data = IMAGES[name]
        assert image['id'] == IDS[name]
        assert image['status'] == status
        assert image['visibility'] == visibility
        assert image['owner'] == OWNER
        assert (image['min_disk'], image['min_ram']) == (1, 64)
        assert image['created_at'] == '2024-03-01T10:00:00Z'
        assert image['updated_at'] == '2024-03-02T11:30:00Z'
        assert sorted(image['tags']) == sorted(['ubuntu', name])
        assert image['hw_disk_bus'] == 'virtio'
        assert image['os_distro'] == name
        assert 'gone_property' not in image
        if has_data:
            data = image_data(name)
            assert image['size'] == len(data)
            assert image['checksum'] == hashlib.md5(data).hexdigest()
            assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()
            url = 'file://' + os.path.join(str(store), IDS[name])
            assert image['locations'] == [{'url': url, 'metadata': {}}]
            assert image['direct_url'] == url
        else:
            assert image['locations'] == []

    for name in ('public-active', 'private-active', 'shared-active',
                 'community-active'):
        resp = admin.download(IDS[name])
        assert resp.status_code == 200, resp.text
        assert resp.content == image_data(name)
    assert admin.download(IDS['queued']).status_code == 204
    for name in ('pending-delete', 'deleted'):
        assert admin.get(f'/v2/images/{IDS[name]}').status_code == 404, name
    # Killed images are never listed but still shown (upstream).
    killed = admin.show(IDS['killed'])
    assert (killed['status'], killed['locations']) == ('killed', [])

    # Members: the removed one is gone; the accepted member sees the image.
    resp = admin.get(f"/v2/images/{IDS['shared-active']}/members")
    assert resp.status_code == 200, resp.text
    assert sorted((m['member_id'], m['status'])
                  for m in resp.json()['members']) == [
        (MEMBER, 'accepted'), ('project-pending', 'pending')]
    member = Api(server, MEMBER)
    assert IDS['shared-active'] in member.list_ids()
    assert member.download(IDS['shared-active']).content == image_data(
        'shared-active')
    stranger = Api(server, 'project-stranger')
    assert stranger.get(
        f"/v2/images/{IDS['private-active']}").status_code == 404
    assert IDS['public-active'] in stranger.list_ids()


# --- refusals ---------------------------------------------------------------

UNKNOWN_REVISION = 'someone_else01'


def journal_mode(path):
    conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        return conn.execute('PRAGMA journal_mode').fetchone()[0]
    finally:
        conn.close()


@contextlib.contextmanager
def untouched_sqlite(path, url):
    """The SQLite file, its directory, rows and schema are as before."""
    state, rows, schema = file_state(path), snapshot(url), schema_text(url)
    mode = journal_mode(path)
    yield
    assert snapshot(url) == rows
    assert schema_text(url) == schema
    assert file_state(path) == state, (
        f'the database file was written (journal_mode {mode} -> '
        f'{journal_mode(path)})')


def test_unknown_revision_is_refused_sqlite(sqlite_copy, tmp_path):
    url, path, _store = sqlite_copy
    set_alembic_version(url, UNKNOWN_REVISION)
    conf = our_conf(tmp_path, url)

    with untouched_sqlite(path, url):
        result = manage(conf, 'db', 'sync')
        assert_one_line_error(result, UNKNOWN_REVISION)

    assert alembic_versions(url) == [UNKNOWN_REVISION]


def set_alembic_versions(url, revisions):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text('DELETE FROM alembic_version'))
            conn.execute(sa.text('INSERT INTO alembic_version (version_num) '
                                 'VALUES (:r)'), [{'r': r} for r in revisions])
    finally:
        engine.dispose()


@pytest.mark.parametrize('revisions', [
    ['zed_contract01'],
    # Between upstream's expand and contract (a rolling upgrade).
    ['2024_1_expand01', 'zed_contract01'],
], ids=['older', 'half-upgraded'])
def test_older_upstream_revision_is_refused_sqlite(sqlite_copy, tmp_path,
                                                   revisions):
    """Upstream's own older revisions are known but not adoptable: the
    operator is told to finish upstream's upgrade first."""
    url, path, _store = sqlite_copy
    set_alembic_versions(url, revisions)
    conf = our_conf(tmp_path, url)

    with untouched_sqlite(path, url):
        result = manage(conf, 'db', 'sync')
        line = assert_one_line_error(result, revisions[-1])
        assert UPSTREAM_HEAD in line

    assert alembic_versions(url) == revisions


@pytest.mark.parametrize('change', [
    'DROP INDEX owner_image_idx',
    'ALTER TABLE images ADD COLUMN extra_column VARCHAR(10)',
    'DROP TABLE cached_images',
], ids=['missing-index', 'extra-column', 'missing-table'])
def test_upstream_head_with_another_schema_is_refused(sqlite_copy, tmp_path,
                                                      change):
    """At upstream's head revision but not upstream's schema (verified
    against our models): refused, rows and schema left as they are."""
    url, _path, _store = sqlite_copy
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(change))
    engine.dispose()
    rows, schema = snapshot(url), schema_text(url)

    result = manage(our_conf(tmp_path, url), 'db', 'sync')

    assert_one_line_error(result, UPSTREAM_HEAD)
    assert snapshot(url) == rows
    assert schema_text(url) == schema
    assert alembic_versions(url) == [UPSTREAM_HEAD]


@pytest.mark.parametrize('kind', ['mariadb', 'postgresql'])
def test_unknown_revision_is_refused_on_a_server(kind, new_database_url,
                                                 tmp_path):
    url = new_database_url(kind)
    sync_database(url)
    store = tmp_path / 'store'
    store.mkdir()
    # Our schema has what fill() writes (the claims table aside).
    fill(url, str(store))
    set_alembic_version(url, UNKNOWN_REVISION)
    rows, schema = snapshot(url), schema_text(url)

    result = manage(our_conf(tmp_path, url), 'db', 'sync')

    assert_one_line_error(result, UNKNOWN_REVISION)
    assert snapshot(url) == rows
    assert schema_text(url) == schema
    assert alembic_versions(url) == [UNKNOWN_REVISION]
