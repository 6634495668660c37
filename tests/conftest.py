"""Fixtures shared by every kind of test: real database servers.

A test that needs a server it cannot start skips with the reason, except
when GLANCE_TEST_REQUIRE_ALL=1 (CI), where it fails instead.
"""

import os
import subprocess
import uuid

import pytest
import sqlalchemy

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get('GLANCE_SHARED_DIR',
                            os.path.join(os.path.dirname(REPO_ROOT), 'shared'))
MICRO_DB = os.path.join(SHARED_DIR, 'db', 'micro-db.sh')
DB_KINDS = ['sqlite', 'mariadb', 'postgresql']


def require(ok, reason):
    """Skip (locally) or fail (CI) when a real part is missing."""
    if ok:
        return
    if os.environ.get('GLANCE_TEST_REQUIRE_ALL') == '1':
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _start_micro_db(kind, tmp_path_factory):
    require(os.path.exists(MICRO_DB), '%s not found' % MICRO_DB)
    # micro-db needs a short path (unix socket) that postgres can traverse.
    data_dir = str(tmp_path_factory.mktemp(kind))
    result = subprocess.run([MICRO_DB, 'start', kind, data_dir],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        subprocess.run([MICRO_DB, 'purge', data_dir], capture_output=True,
                       timeout=120)
        require(False, 'micro-db.sh start %s failed:\n%s'
                % (kind, result.stderr[-3000:]))
    env = dict(line.split('=', 1) for line in result.stdout.splitlines()
               if '=' in line)
    return data_dir, env['DATABASE_URL']


@pytest.fixture(scope='session')
def db_servers(tmp_path_factory):
    """Lazily started MariaDB/PostgreSQL servers: kind -> admin URL."""
    started = {}

    def server_url(kind):
        if kind not in started:
            started[kind] = _start_micro_db(kind, tmp_path_factory)
        return started[kind][1]

    yield server_url
    for data_dir, _url in started.values():
        subprocess.run([MICRO_DB, 'purge', data_dir], capture_output=True,
                       timeout=120)


def _scratch_database(server_url):
    """A new empty database on the server; returns (url, drop)."""
    name = 'test_%s' % uuid.uuid4().hex[:12]
    url = sqlalchemy.engine.make_url(server_url)
    admin = sqlalchemy.create_engine(url, isolation_level='AUTOCOMMIT')
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


@pytest.fixture
def new_database_url(db_servers, tmp_path):
    """Factory: a fresh, empty database of the given kind, dropped after."""
    drops = []

    def make(kind):
        if kind == 'sqlite':
            return 'sqlite:///%s' % (tmp_path / ('%s.sqlite' % uuid.uuid4().hex))
        url, drop = _scratch_database(db_servers(kind))
        drops.append(drop)
        return url

    yield make
    for drop in drops:
        drop()


@pytest.fixture(params=DB_KINDS)
def database_url(request, new_database_url):
    """A fresh empty database, once per kind: SQLite, MariaDB, PostgreSQL."""
    return new_database_url(request.param)
