#!/usr/bin/env python3
"""Benchmark of glance-scrubber's parallel scrubbing (issue 7; not a test).

N pending_delete images (one location each) whose data is in an S3 store
served by ``fake_s3.py`` (../shared/upstream), whose DELETE sleeps a fixed
``--delete-delay-ms`` (100 ms): honest per-delete latency, reached through
glance_store's own s3 driver. For each ``scrub_pool_size`` (1, 8, 32):

* limit: a plain loop of ``glance_store.delete_from_backend`` calls in an
  eventlet GreenPool of the same size, same driver, same configuration, no
  database and no scrubber: the delete throughput that concurrency can
  reach. It also gives the driver's CPU time per delete (the s3 driver
  builds a boto3 client for every call, ~0.12 s of CPU; CPU time does not
  overlap in a GreenPool, so 1 / cpu_per_delete caps any single process);
* ours: this repository's ``glance-scrubber`` one-shot;
* upstream: glance 33.0.0's ``glance-scrubber`` one-shot (its own venv),

each on a fresh SQLite database seeded with the same rows (each
implementation's own schema, made by its own ``glance-manage db sync``),
the same store configuration ([glance_store] stores = s3) and a fresh fake
S3 server holding the N objects. Throughput is timed from the fake S3's
DELETE counter (first to last delete, polled), the same way for all three;
process wall time is reported too.

Prints ONE JSON document on stdout; progress goes to stderr.

Needs boto3 in this repository's venv (glance_store's s3 driver imports it;
it is not a requirement of the project): ``.venv/bin/pip install boto3``.
The upstream venv (``GLANCE_UPSTREAM_VENV``, default ../upstream/venv next
to the repository) needs glance==33.0.0 and boto3; ``--no-upstream`` skips
it. Upstream commands run from a scratch directory, so that they import
upstream's glance and not this repository's.

    .venv/bin/python benchmarks/scrub_bench.py [--images 300]
        [--pools 1,8,32] [--delete-delay-ms 100] [--no-upstream]
"""

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('GLANCE_SHARED_DIR',
                        os.path.join(os.path.dirname(REPO), 'shared'))
FAKE_S3 = os.path.join(SHARED, 'upstream', 'fake_s3.py')
MICRO_DB = os.path.join(SHARED, 'db', 'micro-db.sh')
UPSTREAM_VENV = os.environ.get(
    'GLANCE_UPSTREAM_VENV',
    os.path.join(os.path.dirname(REPO), 'upstream', 'venv'))
BUCKET = 'glance'

# The limit: a GreenPool of plain glance_store deletes, in a child process
# set up like the scrubber (monkey-patched, same configuration file). With
# ``threads``: the same with a ThreadPoolExecutor and no monkey-patching (as
# upstream's scrubber since 31.0.0), for reference.
LIMIT_CHILD = r'''
import sys
THREADS = sys.argv[4] == 'threads'
if not THREADS:
    import eventlet
    eventlet.monkey_patch()
import json, time
from concurrent.futures import ThreadPoolExecutor
import glance_store
from oslo_config import cfg
conf_file, pool_size, urls_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
CONF = cfg.CONF
glance_store.register_opts(CONF)
CONF([], project='glance', default_config_files=[conf_file])
glance_store.create_stores(CONF)
glance_store.verify_default_store()
with open(urls_file) as f:
    urls = f.read().split()
errors = []
def delete(url):
    try:
        glance_store.delete_from_backend(url)
    except Exception as e:
        errors.append(repr(e))
wall, cpu = time.monotonic(), time.process_time()
if THREADS:
    with ThreadPoolExecutor(pool_size) as pool:
        list(pool.map(delete, urls))
else:
    pool = eventlet.GreenPool(pool_size)
    for url in urls:
        pool.spawn_n(delete, url)
    pool.waitall()
print(json.dumps({'seconds': time.monotonic() - wall,
                  'cpu_seconds': time.process_time() - cpu,
                  'deletes': len(urls), 'errors': errors[:5],
                  'error_count': len(errors)}))
'''


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_conf(path, sections):
    with open(path, 'w') as f:
        for section, options in sections.items():
            f.write(f'[{section}]\n')
            for key, value in options.items():
                f.write(f'{key} = {value}\n')
    return path


class FakeS3:
    """A fresh fake_s3.py server (its counters start at zero)."""

    def __init__(self, delay_ms, log_path):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = open(log_path, 'ab')  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, FAKE_S3, '--port', str(self.port),
             '--delete-delay-ms', str(delay_ms), '--bucket', BUCKET],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError('fake_s3.py did not start') from None
                time.sleep(0.05)

    def stats(self):
        with urllib.request.urlopen(self.url + '/_stats', timeout=5) as r:
            return json.load(r)

    def put_objects(self, keys):
        import http.client
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        for key in keys:
            conn.request('PUT', f'/{BUCKET}/{key}', body=b'x' * 64)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        conn.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class DeleteClock:
    """Polls the fake S3's DELETE counter: when the first and the n-th
    delete were seen."""

    def __init__(self, s3, n, interval=0.02):
        self.s3, self.n, self.interval = s3, n, interval
        self.first = self.last = None
        self.stats = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.done.is_set():
            stats = self.s3.stats()
            now = time.monotonic()
            self.stats = stats
            if stats['DELETE'] >= 1 and self.first is None:
                self.first = now
            if stats['DELETE'] >= self.n:
                self.last = now
                return
            time.sleep(self.interval)

    def stop(self):
        self.done.set()
        self.thread.join(timeout=10)
        self.stats = self.s3.stats()

    def throughput(self):
        """Deletes per second between the first and the n-th."""
        if self.first is None or self.last is None or self.last <= self.first:
            return None
        return (self.n - 1) / (self.last - self.first)


def store_sections(s3):
    return {'glance_store': {
        'stores': 's3',
        'default_store': 's3',
        's3_store_host': s3.url,
        's3_store_access_key': 'bench',
        's3_store_secret_key': 'benchbenchbench',
        's3_store_bucket': BUCKET,
        's3_store_bucket_url_format': 'path',
        's3_store_create_bucket_on_put': 'True',
    }}


def s3_url(s3, key):
    return f's3+http://127.0.0.1:{s3.port}/{BUCKET}/{key}'


class Databases:
    """One database per implementation (ours, upstream), of one kind,
    synced once by that implementation's own ``glance-manage db sync`` and
    emptied of images before each run.

    ``sqlite``: files in the work directory. ``mariadb``/``postgresql``: a
    throw-away server started with ../shared/db/micro-db.sh (or the server
    at ``--db-url``), one scratch database per implementation.
    """

    def __init__(self, kind, work, server_url=None):
        self.kind, self.work = kind, work
        self.server_url, self.micro_dir = server_url, None
        self.urls = {}

    def start(self):
        if self.kind == 'sqlite' or self.server_url:
            return
        self.micro_dir = os.path.join(self.work, f'micro-{self.kind}')
        log(f'starting {self.kind} with micro-db.sh')
        result = subprocess.run([MICRO_DB, 'start', self.kind,
                                 self.micro_dir], capture_output=True,
                                text=True, check=False, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f'micro-db.sh start failed:\n'
                               f'{result.stderr[-3000:]}')
        env = dict(line.split('=', 1) for line in result.stdout.splitlines()
                   if '=' in line)
        self.server_url = env['DATABASE_URL']

    def stop(self):
        if self.micro_dir:
            subprocess.run([MICRO_DB, 'purge', self.micro_dir],
                           capture_output=True, check=False, timeout=120)

    def engine(self, which):
        import sqlalchemy as sa
        return sa.create_engine(self.url(which),
                                poolclass=sa.pool.NullPool)

    def url(self, which):
        if which in self.urls:
            return self.urls[which]
        if self.kind == 'sqlite':
            url = f'sqlite:///{self.work}/{which}.sqlite'
        else:
            import sqlalchemy as sa
            name = f'scrub_bench_{which}_{uuid.uuid4().hex[:8]}'
            server = sa.engine.make_url(self.server_url)
            admin = sa.create_engine(server, isolation_level='AUTOCOMMIT',
                                     poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE {name}')
            admin.dispose()
            url = server.set(database=name).render_as_string(
                hide_password=False)
        self.urls[which] = url
        self._sync(which, url)
        return url

    def _sync(self, which, url):
        conf = write_conf(os.path.join(self.work, f'manage-{which}.conf'),
                          {'database': {'connection': url}})
        if which == 'ours':
            cmd = [sys.executable, '-m', 'glance.cmd.manage',
                   '--config-file', conf, 'db', 'sync']
            cwd = REPO
        else:
            cmd = [os.path.join(UPSTREAM_VENV, 'bin', 'glance-manage'),
                   '--config-file', conf, 'db', 'sync']
            cwd = self.work
        log(f'{which}: glance-manage db sync ({self.kind})')
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                                check=False, stdin=subprocess.DEVNULL,
                                timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f'{which} db sync failed:\n'
                               f'{result.stdout[-2000:]}'
                               f'{result.stderr[-2000:]}')

    def reset_and_seed(self, which, s3, keys):
        """Empty the image tables, then one pending_delete image per key
        (deleted a minute ago, one location in the S3 store), as the API
        leaves it with delayed_delete, in that implementation's schema."""
        import datetime

        import sqlalchemy as sa
        engine = self.engine(which)
        try:
            meta = sa.MetaData()
            meta.reflect(engine)
            deleted_at = (datetime.datetime.now(datetime.UTC).replace(
                tzinfo=None, microsecond=0) - datetime.timedelta(minutes=1))
            images, locations = [], []
            image_cols = set(meta.tables['images'].c.keys())
            loc_cols = set(meta.tables['image_locations'].c.keys())
            for i, key in enumerate(keys):
                image_id = str(uuid.uuid4())
                image = {
                    'id': image_id, 'name': f'bench-{i}', 'size': 64,
                    'status': 'pending_delete', 'created_at': deleted_at,
                    'updated_at': deleted_at, 'deleted_at': deleted_at,
                    'deleted': True, 'disk_format': 'raw',
                    'container_format': 'bare', 'owner': 'bench',
                    'min_disk': 0, 'min_ram': 0, 'protected': False,
                    'visibility': 'public' if i % 2 else 'private',
                    'os_hidden': False,
                }
                images.append({k: v for k, v in image.items()
                               if k in image_cols})
                loc = {
                    'image_id': image_id, 'value': s3_url(s3, key),
                    'created_at': deleted_at, 'updated_at': deleted_at,
                    'deleted_at': deleted_at, 'deleted': True,
                    'meta_data': '{}', 'status': 'pending_delete',
                }
                locations.append({k: v for k, v in loc.items()
                                  if k in loc_cols})
            with engine.begin() as conn:
                for table in ('image_location_claims', 'image_locations',
                              'image_properties', 'image_tags',
                              'image_members', 'images'):
                    if table in meta.tables:
                        conn.execute(meta.tables[table].delete())
                conn.execute(meta.tables['images'].insert(), images)
                conn.execute(meta.tables['image_locations'].insert(),
                             locations)
        finally:
            engine.dispose()

    def outcome(self, which):
        import sqlalchemy as sa
        engine = self.engine(which)
        try:
            with engine.connect() as conn:
                return {table: dict(conn.execute(sa.text(
                    f'SELECT status, count(*) FROM {table} '
                    'GROUP BY status')).all())
                    for table in ('image_locations', 'images')}
        finally:
            engine.dispose()


def error_lines(text):
    # glance_store's entry points also name the cinder driver, which needs
    # os_brick: its load failure is logged as ERROR and has no bearing.
    return [line for line in text.splitlines()
            if (' ERROR ' in line or ' CRITICAL ' in line
                or line.startswith('Traceback'))
            and 'os_brick' not in line]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:

    def __init__(self, args, work, dbs):
        self.args, self.work, self.dbs = args, work, dbs
        self.n = args.images

    def path(self, *names):
        return os.path.join(self.work, *names)

    def limit(self, pool, mode):
        tag = f'limit-{mode}-{pool}'
        s3 = FakeS3(self.args.delete_delay_ms, self.path(f'{tag}-s3.log'))
        try:
            keys = [f'{tag}-{i}' for i in range(self.n)]
            s3.put_objects(keys)
            conf = write_conf(self.path(f'{tag}.conf'), store_sections(s3))
            urls = self.path(f'{tag}.urls')
            with open(urls, 'w') as f:
                f.write('\n'.join(s3_url(s3, k) for k in keys))
            clock = DeleteClock(s3, self.n)
            result = subprocess.run(
                [sys.executable, '-c', LIMIT_CHILD, conf, str(pool), urls,
                 mode], cwd=REPO, capture_output=True, text=True,
                check=False, stdin=subprocess.DEVNULL, timeout=3600)
            clock.stop()
            if result.returncode != 0:
                raise RuntimeError(f'limit loop failed:\n{result.stderr}')
            child = json.loads(result.stdout.strip().splitlines()[-1])
            return {
                'deletes_per_s': clock.throughput(),
                'in_process_deletes_per_s': child['deletes'] / child[
                    'seconds'],
                'cpu_s_per_delete': child['cpu_seconds'] / child['deletes'],
                'errors': child['error_count'],
                's3_deletes': clock.stats['DELETE'],
                'max_concurrent_deletes': clock.stats[
                    'max_concurrent_delete'],
            }
        finally:
            s3.stop()

    def scrub(self, which, pool):
        tag = f'{which}-{pool}'
        s3 = FakeS3(self.args.delete_delay_ms, self.path(f'{tag}-s3.log'))
        try:
            keys = [f'{tag}-{i}' for i in range(self.n)]
            s3.put_objects(keys)
            self.dbs.reset_and_seed(which, s3, keys)
            log_file = self.path(f'{tag}.log')
            sections = {
                'DEFAULT': {'scrub_pool_size': pool, 'scrub_time': 0,
                            'delayed_delete': 'True', 'log_file': log_file},
                'database': {'connection': self.dbs.url(which)},
            }
            sections.update(store_sections(s3))
            conf = write_conf(self.path(f'{tag}.conf'), sections)
            if which == 'ours':
                cmd = [sys.executable, '-m', 'glance.cmd.scrubber',
                       '--config-file', conf]
                cwd = REPO
            else:
                cmd = [os.path.join(UPSTREAM_VENV, 'bin', 'glance-scrubber'),
                       '--config-file', conf]
                cwd = self.work
            clock = DeleteClock(s3, self.n)
            started, cpu = time.monotonic(), children_cpu()
            result = subprocess.run(cmd, cwd=cwd, capture_output=True,
                                    text=True, check=False, timeout=3600,
                                    stdin=subprocess.DEVNULL)
            wall, cpu = time.monotonic() - started, children_cpu() - cpu
            clock.stop()
            with open(log_file, errors='replace') as f:
                output = f.read() + result.stdout + result.stderr
            outcome = self.dbs.outcome(which)
            scrubbed = outcome['image_locations'].get('deleted', 0)
            errors = error_lines(output)
            return {
                'images_per_s': clock.throughput(),
                'process_wall_s': wall,
                'process_cpu_s': cpu,
                'cpu_s_per_image': cpu / self.n,
                'exit_code': result.returncode,
                'error_lines': len(errors),
                'first_error': errors[0][:300] if errors else None,
                's3_deletes': clock.stats['DELETE'],
                'max_concurrent_deletes': clock.stats[
                    'max_concurrent_delete'],
                'db_after': outcome,
                'all_scrubbed': scrubbed == self.n and outcome['images'].get(
                    'deleted', 0) == self.n,
            }
        finally:
            s3.stop()

    def run(self):
        pools = [int(p) for p in self.args.pools.split(',')]
        whiches = ['ours'] + ([] if self.args.no_upstream else ['upstream'])
        modes = ['green'] + (['threads'] if self.args.thread_limit else [])
        for which in whiches:
            self.dbs.url(which)
        results = {}
        for pool in pools:
            entry = {}
            for mode in modes:
                log(f'pool {pool}: limit ({mode}: plain loop of deletes)')
                entry['limit' if mode == 'green' else 'limit_threads'] = \
                    self.limit(pool, mode)
            for which in whiches:
                log(f'pool {pool}: {which} glance-scrubber')
                entry[which] = self.scrub(which, pool)
                log(f'pool {pool}: {which}: '
                    f'{_fmt(entry[which]["images_per_s"])} images/s '
                    f'(limit {_fmt(entry["limit"]["deletes_per_s"])}), '
                    f'all scrubbed: {entry[which]["all_scrubbed"]}')
            results[pool] = entry
        return self.summarize(pools, whiches, results)

    def summarize(self, pools, whiches, results):
        serial = {which: results[pools[0]][which]['images_per_s']
                  for which in whiches}
        summary = []
        for pool in pools:
            entry = results[pool]
            limit = entry['limit']['deletes_per_s']
            cpu = entry['limit']['cpu_s_per_delete']
            row = {
                'scrub_pool_size': pool,
                'limit_deletes_per_s': limit,
                'latency_only_ideal_per_s': pool * 1000.0
                / self.args.delete_delay_ms,
                'limit_cpu_s_per_delete': cpu,
                'cpu_only_ceiling_per_s': 1 / cpu if cpu else None,
                # Share of the limit's wall time spent on the driver's CPU:
                # near 1 means the limit is set by CPU, not by the store.
                'cpu_share_of_limit': limit * cpu if limit and cpu else None,
            }
            if 'limit_threads' in entry:
                row['limit_threads_deletes_per_s'] = entry['limit_threads'][
                    'deletes_per_s']
                row['limit_threads_cpu_s_per_delete'] = entry[
                    'limit_threads']['cpu_s_per_delete']
            for which in whiches:
                ips = entry[which]['images_per_s']
                row[f'{which}_images_per_s'] = ips
                row[f'{which}_speedup_over_serial'] = _ratio(
                    ips, serial[which]) if pools[0] == 1 else None
                row[f'{which}_ratio_to_limit'] = _ratio(ips, limit)
                row[f'{which}_cpu_s_per_image'] = entry[which][
                    'cpu_s_per_image']
                row[f'{which}_all_scrubbed'] = entry[which]['all_scrubbed']
                row[f'{which}_error_lines'] = entry[which]['error_lines']
            if 'upstream' in whiches:
                row['ours_over_upstream'] = _ratio(
                    entry['ours']['images_per_s'],
                    entry['upstream']['images_per_s'])
            summary.append(row)
        return {'summary': summary, 'details': results}


def _ratio(a, b):
    return a / b if a and b else None


def _fmt(value):
    return 'n/a' if value is None else f'{value:.2f}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=300)
    parser.add_argument('--pools', default='1,8,32')
    parser.add_argument('--delete-delay-ms', type=float, default=100.0)
    parser.add_argument('--no-upstream', action='store_true')
    parser.add_argument('--work-dir', help='kept afterwards (default: a '
                        'temporary directory, removed)')
    parser.add_argument('--db', default='sqlite',
                        choices=('sqlite', 'mariadb', 'postgresql'),
                        help='mariadb/postgresql: a throw-away server from '
                        'micro-db.sh, unless --db-url names one')
    parser.add_argument('--db-url', help='admin URL of a running server of '
                        'the --db kind (scratch databases are made on it)')
    parser.add_argument('--thread-limit', action='store_true',
                        help='also measure the plain loop in a '
                        'ThreadPoolExecutor without monkey-patching')
    args = parser.parse_args()
    if not os.path.exists(FAKE_S3):
        sys.exit(f'{FAKE_S3} not found (set GLANCE_SHARED_DIR)')
    if not args.no_upstream and not os.path.exists(
            os.path.join(UPSTREAM_VENV, 'bin', 'glance-scrubber')):
        sys.exit(f'no glance-scrubber in {UPSTREAM_VENV} (set '
                 'GLANCE_UPSTREAM_VENV or pass --no-upstream)')
    work = args.work_dir or tempfile.mkdtemp(prefix='scrub-bench-')
    os.makedirs(work, exist_ok=True)
    started = time.monotonic()
    dbs = Databases(args.db, work, args.db_url)
    try:
        dbs.start()
        report = Bench(args, work, dbs).run()
    finally:
        dbs.stop()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    report['setup'] = {
        'images': args.images, 'delete_delay_ms': args.delete_delay_ms,
        'ours_launcher': 'python -m glance.cmd.scrubber',
        'store': 'glance_store s3 driver -> fake_s3.py (one location an '
                 'image)',
        'database': f'{args.db}: one database per implementation (its own '
                    'schema, its own db sync), emptied and seeded before '
                    'each run',
        'cpus': os.cpu_count(), 'python': platform.python_version(),
        'load_average_at_end': os.getloadavg(),
        'seconds': time.monotonic() - started,
    }
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
