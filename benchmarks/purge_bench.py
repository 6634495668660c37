#!/usr/bin/env python3
"""Benchmark of ``glance-manage db purge`` (issue 8): ours, upstream's, and
the practical limit, on identical copies of one database.

For each database kind (SQLite, MariaDB; PostgreSQL on request):

1. a base database is built at *upstream's* schema with upstream's
   ``glance-manage db sync`` and filled with M soft-deleted images, each
   with properties, tags, a member and a location (plus a tenth as many
   live images with live children, and some deleted tasks with their
   task_info), inserted with executemany in big transactions;
2. it is copied three times: one copy for upstream, two that our
   ``glance-manage db sync`` adopts (ours, and the limit);
3. timed, one after the other:
   * upstream: ``glance-manage db purge --age_in_days 0 --max_rows -1``
     (glance 33.0.0 in its own venv),
   * ours: the same command of this repository,
   * the limit: one hand-written ``DELETE ... WHERE deleted = 1 AND
     deleted_at < :cutoff`` per table, children first, each in its own
     transaction, in this process;
4. besides the wall time of each command, the time spent in its
   ``main()`` after the imports (start-up costs ~2 s and is not purge
   work) is taken: the "in_main" figures. The limit runs in this process.

Prints one JSON document: per kind, rows purged, seconds and rows/s of
each (wall and in_main), and the ratios ours/upstream and ours/limit (>1
means ours is faster). Targets (issue 8): ours >= upstream, ours >=
limit / 2 (judged on the in_main figures).

    .venv/bin/python benchmarks/purge_bench.py [--kinds sqlite,mariadb]
        [--images 100000] [--upstream-venv DIR] [--workdir DIR] [--keep]

The upstream venv defaults to ``$UPSTREAM_VENV`` or ``../upstream/venv``
beside the repository; micro-db.sh (MariaDB/PostgreSQL servers) to
``$GLANCE_SHARED_DIR/db/micro-db.sh`` or ``../shared/db/micro-db.sh``.
Upstream's venv needs a driver for server databases: when it lacks one,
this venv's pymysql/psycopg2 is lent to it through PYTHONPATH.
"""

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get('GLANCE_SHARED_DIR',
                            os.path.join(os.path.dirname(REPO_ROOT), 'shared'))
MICRO_DB = os.path.join(SHARED_DIR, 'db', 'micro-db.sh')
UPSTREAM_VENV = os.environ.get(
    'UPSTREAM_VENV', os.path.join(os.path.dirname(REPO_ROOT), 'upstream',
                                  'venv'))
# A server big enough to hold the data, as a production one would be.
SERVER_CONF = {
    'mariadb': 'innodb_buffer_pool_size = 1G\ninnodb_log_file_size = 256M',
    'postgresql': 'shared_buffers = 512MB\nmax_wal_size = 2GB',
}
DRIVERS = {'mariadb': 'pymysql', 'postgresql': 'psycopg2'}
# Longest wait for a server to finish its background work.
SETTLE_SECONDS = 300
# Children before parents.
PURGED = ('task_info', 'image_properties', 'image_tags', 'image_locations',
          'image_members', 'tasks')
COUNTED = PURGED + ('images',)
PROPERTIES, TAGS = 3, 2
CHUNK = 20000


def utcnow():
    """Naive UTC, second precision, as the timestamp columns hold."""
    return datetime.datetime.now(datetime.UTC).replace(
        tzinfo=None, microsecond=0)


def log(message):
    print('[purge_bench {}] {}'.format(time.strftime('%H:%M:%S'), message),
          file=sys.stderr, flush=True)


# --- databases --------------------------------------------------------------

class Server:
    """Where the databases of one kind live: new(name) -> URL."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.workdir = workdir
        self.data_dir = None
        self.admin_url = None
        if kind != 'sqlite':
            self.data_dir = os.path.join(workdir, kind)
            env = dict(os.environ, MICRO_DB_EXTRA_CONF=SERVER_CONF[kind])
            log(f'starting {kind}')
            out = subprocess.run([MICRO_DB, 'start', kind, self.data_dir],
                                 check=False,
                                 capture_output=True, text=True, env=env,
                                 timeout=900)
            if out.returncode != 0:
                raise SystemExit(f'micro-db.sh start {kind} failed:\n'
                                 f'{out.stderr[-3000:]}')
            self.admin_url = dict(
                line.split('=', 1) for line in out.stdout.splitlines()
                if '=' in line)['DATABASE_URL']

    def url(self, name):
        if self.kind == 'sqlite':
            return 'sqlite:///{}'.format(os.path.join(self.workdir,
                                                 name + '.sqlite'))
        return sa.engine.make_url(self.admin_url).set(
            database=name).render_as_string(hide_password=False)

    def _admin(self):
        return sa.create_engine(self.admin_url, isolation_level='AUTOCOMMIT',
                                poolclass=sa.pool.NullPool)

    def new(self, name):
        if self.kind != 'sqlite':
            engine = self._admin()
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE {name}')
            engine.dispose()
        return self.url(name)

    def copy(self, source, name):
        """A copy of database ``source`` named ``name``; returns its URL."""
        if self.kind == 'sqlite':
            shutil.copyfile(self.url(source)[len('sqlite:///'):],
                            self.url(name)[len('sqlite:///'):])
        elif self.kind == 'postgresql':
            engine = self._admin()
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    f'CREATE DATABASE {name} TEMPLATE {source}')
            engine.dispose()
        else:
            self._copy_mariadb(source, name)
        return self.url(name)

    def _copy_mariadb(self, source, name):
        self.new(name)
        engine = sa.create_engine(self.url(name), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql('SET FOREIGN_KEY_CHECKS = 0')
            tables = [row[0] for row in conn.exec_driver_sql(
                f'SHOW TABLES FROM {source}')]
            for table in tables:
                ddl = conn.exec_driver_sql(
                    f'SHOW CREATE TABLE {source}.{table}').one()[1]
                conn.exec_driver_sql(ddl)
                conn.exec_driver_sql(
                    f'INSERT INTO {table} SELECT * FROM {source}.{table}')
            conn.exec_driver_sql('SET FOREIGN_KEY_CHECKS = 1')
        engine.dispose()

    def settle(self):
        """Wait until MariaDB is idle: what the copies and the previous
        contender left to do in the background (flushing dirty pages,
        purging deleted records) would slow whoever comes next.
        (PostgreSQL's CHECKPOINT needs a superuser, which micro-db's
        user is not.)"""
        if self.kind == 'mariadb':
            engine = self._admin()
            with engine.connect() as conn:
                self._settle_innodb(conn)
            engine.dispose()

    @staticmethod
    def _settle_innodb(conn):
        def status(name):
            return int(conn.exec_driver_sql(
                f"SHOW GLOBAL STATUS LIKE '{name}'").one()[1])
        dirty_pct = conn.exec_driver_sql(
            'SELECT @@GLOBAL.innodb_max_dirty_pages_pct').scalar()
        conn.exec_driver_sql('SET GLOBAL innodb_max_dirty_pages_pct = 0')
        deadline = time.monotonic() + SETTLE_SECONDS
        try:
            while time.monotonic() < deadline and (
                    status('Innodb_buffer_pool_pages_dirty')
                    or status('Innodb_history_list_length')):
                time.sleep(0.5)
        finally:
            conn.exec_driver_sql(
                f'SET GLOBAL innodb_max_dirty_pages_pct = {dirty_pct}')

    def stop(self):
        if self.data_dir:
            subprocess.run([MICRO_DB, 'purge', self.data_dir],
                           check=False, capture_output=True, timeout=300)


def conf_file(workdir, name, url):
    path = os.path.join(workdir, name + '.conf')
    with open(path, 'w') as f:
        f.write('[DEFAULT]\nuse_stderr = true\n'
                f'[database]\nconnection = {url}\n')
    return path


# --- filling ----------------------------------------------------------------

def fill(url, images, when):
    """``images`` soft-deleted images with children (deleted at ``when``),
    a tenth as many live ones with live children, and deleted tasks."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    placeholder = '?' if engine.dialect.paramstyle == 'qmark' else '%s'
    live = max(1, images // 10)
    tasks = max(1, images // 20)

    def insert(conn, table, columns, rows):
        statement = 'INSERT INTO {} ({}) VALUES ({})'.format(
            table, ', '.join(columns), ', '.join([placeholder] * len(columns)))
        cursor = conn.connection.dbapi_connection.cursor()
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                cursor.executemany(statement, batch)
                batch = []
        if batch:
            cursor.executemany(statement, batch)
        cursor.close()

    image_cols = ('id', 'name', 'status', 'visibility', 'min_disk', 'min_ram',
                  'protected', 'os_hidden', 'size', 'owner', 'created_at',
                  'updated_at', 'deleted_at', 'deleted')
    child_common = ('image_id', 'created_at', 'updated_at', 'deleted_at',
                    'deleted')
    created = when - datetime.timedelta(days=30)
    deleted_ids = [str(uuid.uuid4()) for _ in range(images)]
    live_ids = [str(uuid.uuid4()) for _ in range(live)]

    def state(image_id, is_deleted):
        return ((image_id, created, when, when, True) if is_deleted
                else (image_id, created, created, None, False))

    everything = [(i, True) for i in deleted_ids] + [
        (i, False) for i in live_ids]
    with engine.begin() as conn:
        insert(conn, 'images', image_cols, (
            (i, 'image', 'deleted' if d else 'active', 'private', 0, 0,
             False, False, 1024, 'project_a', created,
             when if d else created, when if d else None, d)
            for i, d in everything))
        insert(conn, 'image_properties', child_common + ('name', 'value'), (
            state(i, d) + (f'prop_{n}', f'value {n}')
            for i, d in everything for n in range(PROPERTIES)))
        insert(conn, 'image_tags', child_common + ('value',), (
            state(i, d) + (f'tag_{n}',)
            for i, d in everything for n in range(TAGS)))
        insert(conn, 'image_members', child_common + (
            'member', 'can_share', 'status'), (
            state(i, d) + ('project_b', False, 'accepted')
            for i, d in everything))
        insert(conn, 'image_locations', child_common + (
            'value', 'meta_data', 'status'), (
            state(i, d) + (f'file:///var/lib/glance/images/{i}', '{}',
                           'deleted' if d else 'active')
            for i, d in everything))
        task_ids = [str(uuid.uuid4()) for _ in range(tasks)]
        insert(conn, 'tasks', (
            'id', 'type', 'status', 'owner', 'created_at', 'updated_at',
            'deleted_at', 'deleted'), (
            (t, 'import', 'success', 'project_a', created, when, when, True)
            for t in task_ids))
        insert(conn, 'task_info', ('task_id', 'input', 'result', 'message'), (
            (t, '{"import_from": "http://example.com/x"}', '{}', '')
            for t in task_ids))
    engine.dispose()


def counts(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        result = {t: conn.exec_driver_sql(
            f'SELECT COUNT(*) FROM {t}').scalar() for t in COUNTED}
    engine.dispose()
    return result


# --- the contenders ---------------------------------------------------------

def upstream_env(workdir, kind):
    """Upstream's environment, with a driver lent if its venv lacks one."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    driver = DRIVERS.get(kind)
    python = os.path.join(UPSTREAM_VENV, 'bin', 'python')
    if driver and subprocess.run([python, '-c', f'import {driver}'],
                                 check=False,
                                 capture_output=True).returncode != 0:
        lent = os.path.join(workdir, 'lent')
        os.makedirs(lent, exist_ok=True)
        spec = importlib.util.find_spec(driver)
        target = os.path.join(lent, driver)
        if not os.path.exists(target):
            os.symlink(os.path.dirname(spec.origin), target)
        # psycopg2 brings its bundled libraries next to the package.
        libs = os.path.join(os.path.dirname(os.path.dirname(spec.origin)),
                            driver + '_binary.libs')
        if os.path.isdir(libs) and not os.path.exists(
                os.path.join(lent, os.path.basename(libs))):
            os.symlink(libs, os.path.join(lent, os.path.basename(libs)))
        env['PYTHONPATH'] = lent
        log(f'lent {driver} to the upstream venv')
    return env


# Runs a glance-manage in-process after its imports, and reports how long
# main() took: start-up (imports, ~2 s) is not the purge's work.
TIMED_MAIN = """
import sys, time
from glance.cmd import manage
sys.argv = ['glance-manage'] + sys.argv[1:]
started = time.perf_counter()
code = 0
try:
    code = manage.main()
except SystemExit as e:
    code = e.code
sys.stderr.write('PURGE_BENCH_MAIN_SECONDS=%f\\n'
                 % (time.perf_counter() - started))
sys.exit(code)
"""


def run(command, env=None, cwd=None):
    """Run a command; returns (wall seconds, seconds in main(), stdout).

    Not from the repository: ``python -c`` would import its glance first.
    """
    started = time.perf_counter()
    out = subprocess.run(command, check=False, capture_output=True,
                         text=True, env=env, cwd=cwd or tempfile.gettempdir(),
                         stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({out.returncode}):"
                         f'\n{out.stdout[-2000:]}{out.stderr[-4000:]}')
    in_main = [float(line.split('=', 1)[1]) for line in
               out.stderr.splitlines()
               if line.startswith('PURGE_BENCH_MAIN_SECONDS=')]
    return elapsed, (in_main[-1] if in_main else elapsed), out.stdout


def purge_args(conf):
    return ['--config-file', conf, 'db', 'purge', '--age_in_days', '0',
            '--max_rows', '-1']


def hand_written_limit(url):
    """One DELETE per table, children first, each its own transaction."""
    cutoff = utcnow()
    statements = [
        ('task_info', ('DELETE FROM task_info WHERE task_id IN (SELECT id '
                       'FROM tasks WHERE deleted = :t AND deleted_at < :c)'))]
    statements += [(t, (f'DELETE FROM {t} WHERE deleted = :t AND '
                        'deleted_at < :c')) for t in PURGED[1:]]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    started = time.perf_counter()
    for _table, statement in statements:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), {'t': True, 'c': cutoff})
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


# --- one kind ---------------------------------------------------------------

def bench_kind(kind, images, workdir):
    server = Server(kind, workdir)
    try:
        return _bench_kind(server, kind, images, workdir)
    finally:
        server.stop()


def _bench_kind(server, kind, images, workdir):
    tag = uuid.uuid4().hex[:6]
    names = {n: f'pb_{n}_{tag}' for n in
             ('base', 'upstream', 'ours', 'limit')}
    up_env = upstream_env(workdir, kind)
    up_manage = [os.path.join(UPSTREAM_VENV, 'bin', 'glance-manage')]
    our_manage = [sys.executable, '-m', 'glance.cmd.manage']
    up_timed = [os.path.join(UPSTREAM_VENV, 'bin', 'python'), '-c',
                TIMED_MAIN]
    our_timed = [sys.executable, '-c', TIMED_MAIN]

    base = server.new(names['base'])
    log(f'{kind}: upstream db sync of the base')
    run(up_manage + ['--config-file', conf_file(workdir, 'base', base), 'db',
                     'sync'], up_env)
    log(f'{kind}: filling {images} deleted images')
    started = time.perf_counter()
    when = utcnow() - datetime.timedelta(days=2)
    fill(base, images, when)
    fill_seconds = time.perf_counter() - started
    before = counts(base)
    log(f'{kind}: filled in {fill_seconds:.1f}s: {before}')

    urls = {}
    for name in ('upstream', 'ours', 'limit'):
        urls[name] = server.copy(names['base'], names[name])
    confs = {name: conf_file(workdir, name, url)
             for name, url in urls.items()}
    for name in ('ours', 'limit'):
        log(f'{kind}: our db sync adopts the {name} copy')
        run(our_manage + ['--config-file', confs[name], 'db', 'sync'])

    results = {}
    log(f'{kind}: upstream purge')
    server.settle()
    results['upstream'] = run(up_timed + purge_args(confs['upstream']),
                              up_env)[:2]
    log(f'{kind}: our purge')
    server.settle()
    wall, in_main, output = run(our_timed + purge_args(confs['ours']))
    results['ours'] = (wall, in_main)
    log(f'{kind}: hand-written limit')
    server.settle()
    seconds = hand_written_limit(urls['limit'])
    results['limit'] = (seconds, seconds)

    after = {name: counts(url) for name, url in urls.items()}
    purged = {name: sum(before[t] - after[name][t] for t in COUNTED)
              for name in urls}
    if len(set(purged.values())) != 1 or any(
            after[name] != after['limit'] for name in urls):
        raise SystemExit(f'the contenders disagree: {after}')
    rows = purged['ours']

    report = {'rows_before': before, 'rows_purged': rows,
              'fill_seconds': round(fill_seconds, 1),
              'our_output': output.strip().splitlines()}
    for name, (wall, in_main) in results.items():
        report[name] = {'seconds': round(wall, 2),
                        'rows_per_s': round(rows / wall),
                        'seconds_in_main': round(in_main, 2),
                        'rows_per_s_in_main': round(rows / in_main)}
    for other in ('upstream', 'limit'):
        report['ours_vs_' + other] = round(
            report['ours']['rows_per_s'] / report[other]['rows_per_s'], 2)
        report['in_main_ours_vs_' + other] = round(
            report['ours']['rows_per_s_in_main']
            / report[other]['rows_per_s_in_main'], 2)
    report['targets_met'] = {
        'at_least_upstream': report['in_main_ours_vs_upstream'] >= 1,
        'within_2x_of_limit': report['in_main_ours_vs_limit'] >= 0.5}
    log('{}: {}'.format(kind, json.dumps({k: v for k, v in report.items()
                                      if '_vs_' in k})))
    return report


def main():
    global UPSTREAM_VENV
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kinds', default='sqlite,mariadb',
                        help='comma-separated: sqlite, mariadb, postgresql')
    parser.add_argument('--images', type=int, default=100000,
                        help='soft-deleted images to fill (default 100000)')
    parser.add_argument('--upstream-venv', default=UPSTREAM_VENV)
    parser.add_argument('--workdir', help='default: a new temporary '
                                          'directory, removed at the end')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directory')
    args = parser.parse_args()
    UPSTREAM_VENV = args.upstream_venv
    if not os.path.exists(os.path.join(UPSTREAM_VENV, 'bin',
                                       'glance-manage')):
        raise SystemExit(f'no upstream glance-manage in {UPSTREAM_VENV} '
                         '(--upstream-venv)')
    # micro-db needs a short path for its unix socket.
    workdir = args.workdir or tempfile.mkdtemp(prefix='pb', dir='/tmp')
    os.makedirs(workdir, exist_ok=True)
    report = {'images': args.images, 'properties_per_image': PROPERTIES,
              'tags_per_image': TAGS, 'members_per_image': 1,
              'locations_per_image': 1, 'cpus': os.cpu_count(),
              'load_average_at_start': os.getloadavg()}
    try:
        for kind in args.kinds.split(','):
            report[kind] = bench_kind(kind, args.images, workdir)
    finally:
        report['load_average_at_end'] = os.getloadavg()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
