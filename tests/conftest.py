"""Fixtures shared by every kind of test: real database servers, CONF.

A test that needs a server it cannot start skips with the reason, except
when GLANCE_TEST_REQUIRE_ALL=1 (CI), where it fails instead.

Database fixtures, from the cheapest:

* ``new_database_url(kind)``: factory of fresh, empty databases (``kind``
  is ``sqlite``, ``mariadb`` or ``postgresql``), dropped after the test.
* ``database_url``: one fresh empty database, the test runs once per kind.
* ``synced_database_url``: the same, with our migrations applied.
* ``db``: a synced database of each kind that ``glance.db.api`` is
  configured to use for the test (``CONF.database.connection``).

``ceph`` is a real single-node Ceph cluster (``micro-ceph.sh``) with the
pools ``images`` and ``volumes``, started once per test process that asks
for it.

``conf`` gives CONF parsed without config files and ``conf.set(name,
value, group=None)`` to override options until the test ends.
"""

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid

import pytest
import sqlalchemy

from tests import helpers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get('GLANCE_SHARED_DIR',
                            os.path.join(os.path.dirname(REPO_ROOT), 'shared'))
MICRO_DB = os.path.join(SHARED_DIR, 'db', 'micro-db.sh')
MICRO_CEPH = os.path.join(SHARED_DIR, 'ceph', 'micro-ceph.sh')
DB_KINDS = ['sqlite', 'mariadb', 'postgresql']
SERVER_DB_KINDS = ['mariadb', 'postgresql']


def require(ok, reason):
    """Skip (locally) or fail (CI) when a real part is missing."""
    if ok:
        return
    if os.environ.get('GLANCE_TEST_REQUIRE_ALL') == '1':
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _purge(data_dir):
    subprocess.run([MICRO_DB, 'purge', data_dir], capture_output=True,
                   timeout=120)
    shutil.rmtree(data_dir, ignore_errors=True)


def _start_micro_db(kind):
    require(os.path.exists(MICRO_DB),
            '%s not found (set GLANCE_SHARED_DIR to the shared/ directory)'
            % MICRO_DB)
    # Not under pytest's basetemp: every pytest session of the same user
    # makes /tmp/pytest-of-USER mode 0700 again when it starts, and the
    # PostgreSQL server (run as user postgres) would lose its data dir. The
    # path must also be short (unix socket).
    data_dir = tempfile.mkdtemp(prefix='glance-test-%s-' % kind)
    # Even if pytest dies before the session teardown, don't leave a
    # server running.
    atexit.register(_purge, data_dir)
    try:
        result = subprocess.run([MICRO_DB, 'start', kind, data_dir],
                                capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        _purge(data_dir)
        require(False, 'micro-db.sh start %s timed out' % kind)
    if result.returncode != 0:
        _purge(data_dir)
        require(False, 'micro-db.sh start %s failed:\n%s'
                % (kind, result.stderr[-3000:]))
    env = dict(line.split('=', 1) for line in result.stdout.splitlines()
               if '=' in line)
    return data_dir, env['DATABASE_URL']


@pytest.fixture(scope='session')
def db_servers():
    """Lazily started MariaDB/PostgreSQL servers: kind -> admin URL.

    A server that failed to start is not tried again in the session.
    GLANCE_TEST_MARIADB_URL / GLANCE_TEST_POSTGRESQL_URL name a running
    server to use instead (a user that may create databases).
    """
    started = {}
    failed = {}

    def server_url(kind):
        given = os.environ.get('GLANCE_TEST_%s_URL' % kind.upper())
        if given:
            return given
        if kind in failed:
            require(False, failed[kind])
        if kind not in started:
            try:
                started[kind] = _start_micro_db(kind)
            except (pytest.skip.Exception, pytest.fail.Exception) as e:
                failed[kind] = str(e)
                raise
        return started[kind][1]

    yield server_url
    for data_dir, _url in started.values():
        _purge(data_dir)


class CephCluster:
    """A running micro-ceph cluster: ``conf`` (ceph.conf, naming the admin
    keyring), ``keyring``, ``fsid`` and ``env`` (its env file)."""

    def __init__(self, directory):
        self.directory = directory
        with open(os.path.join(directory, 'env')) as f:
            words = shlex.split(f.read(), comments=True)
        self.env = dict(w.split('=', 1) for w in words if '=' in w)
        self.conf = self.env['CEPH_CONF']
        self.keyring = self.env['CEPH_KEYRING']
        self.fsid = self.env['CEPH_FSID']


def _ceph_bindings_missing():
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError as e:
        return ('the Ceph Python bindings are not in this virtualenv (%s); '
                'run.sh links them with %s/ceph/link-bindings.sh' % (
                    e, SHARED_DIR))
    return None


def _start_micro_ceph():
    require(os.path.exists(MICRO_CEPH),
            '%s not found (set GLANCE_SHARED_DIR to the shared/ directory)'
            % MICRO_CEPH)
    missing = _ceph_bindings_missing()
    require(missing is None, missing)
    # Short and outside basetemp, as for the database servers.
    directory = tempfile.mkdtemp(prefix='glance-test-ceph-')
    atexit.register(_purge_ceph, directory)
    # Free ports, so that parallel test processes each get a cluster.
    env = dict(os.environ, MICRO_CEPH_MON_PORT=str(helpers.free_port()),
               MICRO_CEPH_MON_PORT_V1=str(helpers.free_port()))
    try:
        result = subprocess.run([MICRO_CEPH, 'start', directory], env=env,
                                capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        _purge_ceph(directory)
        require(False, 'micro-ceph.sh start failed:\n%s' % (
            result.stderr[-3000:] if result else 'timed out'))
    return CephCluster(directory)


def _purge_ceph(directory):
    subprocess.run([MICRO_CEPH, 'purge', directory], capture_output=True,
                   timeout=120)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope='session')
def ceph():
    """A real Ceph cluster (pools ``images`` and ``volumes``) for the
    session; tests keep their images small, its data lives in RAM."""
    cluster = _start_micro_ceph()
    yield cluster
    _purge_ceph(cluster.directory)


def _scratch_database(server_url):
    """A new empty database on the server; returns (url, drop)."""
    name = 'test_%s' % uuid.uuid4().hex[:12]
    url = sqlalchemy.engine.make_url(server_url)
    admin = sqlalchemy.create_engine(url, isolation_level='AUTOCOMMIT',
                                     poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql('CREATE DATABASE %s' % name)

    def drop():
        with admin.connect() as conn:
            if url.get_backend_name() == 'postgresql':
                conn.exec_driver_sql(
                    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                    "WHERE datname = '%s' AND pid <> pg_backend_pid()" % name)
            conn.exec_driver_sql('DROP DATABASE IF EXISTS %s' % name)
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def new_database(kind, db_servers, directory):
    """A fresh, empty database: returns (url, drop); drop() may be None.

    SQLite files go in ``directory``; MariaDB and PostgreSQL databases are
    made on the session's servers (``db_servers``).
    """
    if kind == 'sqlite':
        path = os.path.join(str(directory), '%s.sqlite' % uuid.uuid4().hex)
        return 'sqlite:///%s' % path, None
    return _scratch_database(db_servers(kind))


@pytest.fixture
def new_database_url(db_servers, tmp_path):
    """Factory: a fresh, empty database of the given kind, dropped after."""
    drops = []

    def make(kind):
        url, drop = new_database(kind, db_servers, tmp_path)
        if drop:
            drops.append(drop)
        return url

    yield make
    for drop in drops:
        drop()


@pytest.fixture(params=DB_KINDS)
def database_url(request, new_database_url):
    """A fresh empty database, once per kind: SQLite, MariaDB, PostgreSQL."""
    return new_database_url(request.param)


def sync_database(url):
    """Apply our migrations to the database at ``url`` (in-process)."""
    from glance.db import migration

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        migration.upgrade(engine=engine)
    finally:
        engine.dispose()


@pytest.fixture
def synced_database_url(database_url):
    """A fresh database of each kind, migrated to the head revision."""
    sync_database(database_url)
    return database_url


class _Conf:
    """Overrides of the global CONF that end with the test."""

    def __init__(self, conf):
        self.CONF = conf
        self._overrides = []

    def set(self, name, value, group=None):
        self.CONF.set_override(name, value, group=group)
        self._overrides.append((name, group))

    def clear(self):
        for name, group in reversed(self._overrides):
            self.CONF.clear_override(name, group=group)
        self._overrides = []

    def __getattr__(self, name):
        return getattr(self.CONF, name)


@pytest.fixture
def conf():
    """CONF parsed with no command line and no config files."""
    from glance.common import config

    config.parse_args([], 'glance-api', default_config_files=[])
    overrides = _Conf(config.CONF)
    yield overrides
    overrides.clear()


@pytest.fixture
def db(synced_database_url, conf):
    """A synced database of each kind that glance.db.api uses for the test.

    Returns the URL. The DB API's engine is disposed before and after, so
    no connection outlives the database.
    """
    from glance.db import api as db_api

    db_api.dispose()
    conf.set('connection', synced_database_url, group='database')
    yield synced_database_url
    db_api.dispose()
