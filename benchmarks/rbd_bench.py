#!/usr/bin/env python3
"""Benchmark of image data to and from RBD (issue 9; not a test).

Upload and download MiB/s of one image (``--size``, default 1G) stored in
the ``images`` pool of a real Ceph cluster, for three targets in the same
run, alternating between them in ``--rounds`` rounds so that they share the
machine's noise:

* limit: ``rbd import FILE images/NAME`` (same object size as the stores'
  ``rbd_store_chunk_size``) and ``rbd export images/NAME -`` read through a
  pipe by this script: the practical limit of that cluster on this machine;
* ours: this repository's ``glance-api``;
* upstream: Glance 33.0.0 under uWSGI (its own venv), as in
  ../shared/upstream, with the ``headerauth`` pipeline,

both servers configured the same way: the RBD store (multi-store
``enabled_backends = ceph:rbd`` or single-store, ``--store-mode``), the
same pool, user and chunk size, SQLite, the same number of workers.
Uploads stream the same file in 1 MiB chunks with ``Transfer-Encoding:
chunked`` as python-glanceclient does; each is checked (status active,
size, md5 ``checksum`` and ``os_hash_value`` of the bytes sent, RBD image
present in the pool) or marked unverified and left out of the ratios.
Every image is deleted after its round (the cluster keeps data in RAM).

Without ``--ceph-conf`` a dedicated cluster is started with
../shared/ceph/micro-ceph.sh on free ports and purged at the end.

Prints ONE JSON document on stdout; progress goes to stderr.

    .venv/bin/python benchmarks/rbd_bench.py [--size 1G] [--rounds 2]
        [--ceph-conf CONF] [--store-mode single|multi] [--no-upstream]
"""

import argparse
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from api_bench import (CHUNK, DEFAULT_HEADERS, MiB, Client, _proc_table,
                       _tree, check_image, excerpt, log, measure_hash,
                       parse_size, payload, ratio, size_label)
from scrub_bench import free_port, write_conf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('GLANCE_SHARED_DIR',
                        os.path.join(os.path.dirname(REPO), 'shared'))
MICRO_CEPH = os.path.join(SHARED, 'ceph', 'micro-ceph.sh')
LINK_BINDINGS = os.path.join(SHARED, 'ceph', 'link-bindings.sh')
UPSTREAM_TEMPLATES = os.path.join(SHARED, 'upstream')
UPSTREAM_VENV = os.environ.get(
    'GLANCE_UPSTREAM_VENV',
    os.path.join(os.path.dirname(REPO), 'upstream', 'venv'))
OURS_BIN = os.path.join(REPO, '.venv', 'bin')
POOL = 'images'
STORE_ID = 'ceph'
TICKS = os.sysconf('SC_CLK_TCK')


# --------------------------------------------------------------------------
# CPU accounting (to see who spends the machine's two cores)


def tree_cpu(pid):
    """User+system CPU seconds of pid and its descendants (from /proc)."""
    if pid is None:
        return 0.0
    total = 0
    for p in _tree(_proc_table(), [pid]):
        try:
            with open(f'/proc/{p}/stat') as f:
                fields = f.read().rpartition(')')[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / TICKS


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU seconds used during a block by: this script, the server's
    process tree (or the waited-for children, for the rbd CLI), the OSD."""

    def __init__(self, server_pid, osd_pid):
        self.server_pid, self.osd_pid = server_pid, osd_pid

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.start = (time.process_time(), tree_cpu(self.server_pid),
                      children_cpu(), tree_cpu(self.osd_pid))
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        end = (time.process_time(), tree_cpu(self.server_pid),
               children_cpu(), tree_cpu(self.osd_pid))
        d = [round(b - a, 2) for a, b in zip(self.start, end)]
        self.cpu = {'client_s': d[0],
                    'server_s': d[1] if self.server_pid else d[2],
                    'osd_s': d[3] if self.osd_pid else None}
        return False


# --------------------------------------------------------------------------
# Ceph


class Ceph:
    """The cluster: given by --ceph-conf, or a micro-ceph started here."""

    def __init__(self, args, workdir):
        self.args = args
        self.dir = None
        self.started_here = False
        if args.ceph_conf:
            self.conf = os.path.abspath(args.ceph_conf)
        else:
            self.dir = os.path.join(workdir, 'ceph')
            self.conf = os.path.join(self.dir, 'ceph.conf')

    def start(self):
        if self.dir is None:
            return
        env = dict(os.environ,
                   MICRO_CEPH_MON_PORT=str(free_port()),
                   MICRO_CEPH_MON_PORT_V1=str(free_port()),
                   MICRO_CEPH_OSD_BYTES=str(self.args.osd_bytes))
        log(f'starting micro-ceph in {self.dir} (mon ports '
            f"{env['MICRO_CEPH_MON_PORT']}/{env['MICRO_CEPH_MON_PORT_V1']})")
        self.started_here = True
        proc = subprocess.run([MICRO_CEPH, 'start', self.dir], env=env,
                              capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode:
            raise RuntimeError('micro-ceph start failed: '
                               + (proc.stderr + proc.stdout)[-2000:])

    def purge(self):
        if self.started_here:
            log('purging micro-ceph')
            subprocess.run([MICRO_CEPH, 'purge', self.dir],
                           capture_output=True, stdin=subprocess.DEVNULL)

    def osd_pid(self):
        if self.dir is None:
            return None
        try:
            with open(os.path.join(self.dir, 'run', 'osd.0.pid')) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def cmd(self, *args):
        return ['rbd', '--conf', self.conf, *args]

    def rbd(self, *args):
        proc = subprocess.run(self.cmd(*args), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode:
            raise RuntimeError(f"rbd {' '.join(args)}: "
                               f'{proc.stderr.strip()[-500:]}')
        return proc.stdout

    def images(self):
        return set(json.loads(self.rbd('ls', '--format', 'json', POOL)))

    def info(self):
        out = subprocess.run(['ceph', '--conf', self.conf, 'fsid'],
                             capture_output=True, text=True)
        ver = subprocess.run(['ceph', '--conf', self.conf, 'version'],
                             capture_output=True, text=True)
        return {'conf': self.conf, 'started_here': self.started_here,
                'osd_bytes': self.args.osd_bytes if self.started_here
                else None,
                'fsid': out.stdout.strip(), 'version': ver.stdout.strip()}


# --------------------------------------------------------------------------
# Servers


def store_options(args, ceph_conf):
    rbd = {'rbd_store_ceph_conf': ceph_conf, 'rbd_store_user': 'admin',
           'rbd_store_pool': POOL,
           'rbd_store_chunk_size': args.chunk_size}
    if args.store_mode == 'single':
        return {'glance_store': {'stores': 'rbd', 'default_store': 'rbd',
                                 **rbd}}
    return {'DEFAULT': {'enabled_backends': f'{STORE_ID}:rbd'},
            'glance_store': {'default_backend': STORE_ID},
            STORE_ID: rbd}


def merge(*dicts):
    out = {}
    for d in dicts:
        for section, options in d.items():
            out.setdefault(section, {}).update(options)
    return out


class Server:
    def __init__(self, name, run_dir):
        self.name, self.dir = name, run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.proc = None
        self.console = os.path.join(run_dir, 'console.log')

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def launch(self, argv, cwd):
        with open(self.console, 'ab') as out:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        client = Client(self.url, DEFAULT_HEADERS, 5)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'{self.name} exited '
                                   f'{self.proc.returncode}: {self.tail()}')
            try:
                status, _ = client.request('GET', '/v2/images?limit=1')
                if status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            client.close()
            time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError(f'{self.name} did not answer: {self.tail()}')
        # Let every worker start (and load its store) before measuring.
        for _ in range(6):
            client.request('GET', '/v2/info/stores')
            client.close()
        time.sleep(1)
        client.close()

    def tail(self, n=1500):
        text = ''
        for path in (self.console, os.path.join(self.dir, 'glance-api.log'),
                     os.path.join(self.dir, 'log', 'uwsgi.log')):
            try:
                with open(path, errors='replace') as f:
                    text += f.read()[-n:]
            except OSError:
                pass
        return text

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass


def run_checked(argv, what, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)
    if proc.returncode:
        raise RuntimeError(f'{what} failed: '
                           f'{(proc.stderr + proc.stdout)[-1500:]}')
    return proc.stdout


def start_ours(args, workdir, ceph_conf):
    server = Server('ours', os.path.join(workdir, 'ours'))
    conf = write_conf(os.path.join(server.dir, 'glance-api.conf'), merge(
        {'DEFAULT': {'bind_host': '127.0.0.1', 'bind_port': server.port,
                     'workers': args.workers,
                     'log_file': os.path.join(server.dir, 'glance-api.log')},
         'database': {'connection': 'sqlite:///' + os.path.join(
             server.dir, 'glance.sqlite')},
         'paste_deploy': {'config_file': os.path.join(
             REPO, 'etc', 'glance-api-paste.ini')}},
        store_options(args, ceph_conf)))
    run_checked([os.path.join(OURS_BIN, 'glance-manage'), '--config-file',
                 conf, 'db', 'sync'], 'ours: db sync', cwd=REPO)
    log(f'starting ours on {server.url}')
    server.launch([os.path.join(OURS_BIN, 'glance-api'), '--config-file',
                   conf], cwd=REPO)
    return server


def start_upstream(args, workdir, ceph_conf):
    """Glance 33 under uWSGI, from a directory outside this repository (its
    cwd goes on sys.path: from the repository it would import ours)."""
    server = Server('upstream', os.path.join(workdir, 'upstream'))
    venv = os.path.abspath(args.upstream_venv)
    etc = os.path.join(server.dir, 'etc')
    for sub in ('etc', 'log', 'lock', 'staging', 'tasks'):
        os.makedirs(os.path.join(server.dir, sub), exist_ok=True)
    python = os.path.join(venv, 'bin', 'python')
    if subprocess.run([python, '-c', 'import rados, rbd'],
                      capture_output=True).returncode:
        log(f'linking the Ceph bindings into {venv}')
        run_checked([LINK_BINDINGS, venv], 'link-bindings.sh')
    stores = store_options(args, ceph_conf)
    if args.store_mode == 'multi':  # as ../shared/upstream/glance-api.conf
        stores.update({
            'os_glance_staging_store': {'filesystem_store_datadir':
                                        os.path.join(server.dir, 'staging')},
            'os_glance_tasks_store': {'filesystem_store_datadir':
                                      os.path.join(server.dir, 'tasks')}})
    conf = write_conf(os.path.join(etc, 'glance-api.conf'), merge(
        {'DEFAULT': {'log_file': os.path.join(server.dir, 'log',
                                              'glance-api.log')},
         'database': {'connection': 'sqlite:///' + os.path.join(
             server.dir, 'glance.sqlite')},
         'paste_deploy': {'flavor': 'headerauth', 'config_file':
                          os.path.join(etc, 'glance-api-paste.ini')},
         'oslo_concurrency': {'lock_path': os.path.join(server.dir,
                                                        'lock')}},
        stores))
    shutil.copy(os.path.join(UPSTREAM_TEMPLATES, 'glance-api-paste.ini'),
                etc)
    with open(os.path.join(UPSTREAM_TEMPLATES, 'glance-uwsgi.ini')) as f:
        ini = f.read()
    for key, value in (('@VENV@', venv), ('@RUN_DIR@', server.dir),
                       ('@PORT@', str(server.port)),
                       ('@WORKERS@', str(args.workers))):
        ini = ini.replace(key, value)
    ini_path = os.path.join(etc, 'glance-uwsgi.ini')
    with open(ini_path, 'w') as f:
        f.write(ini)
    run_checked([os.path.join(venv, 'bin', 'glance-manage'), '--config-file',
                 conf, 'db', 'sync'], 'upstream: db sync', cwd=server.dir)
    log(f'starting upstream on {server.url}')
    server.launch([os.path.join(venv, 'bin', 'uwsgi'), '--ini', ini_path],
                  cwd=server.dir)
    return server


def package_version(python, package):
    try:
        proc = subprocess.run(
            [python, '-c', 'import importlib.metadata as m, sys; '
             'print(m.version(sys.argv[1]))', package],
            capture_output=True, text=True, cwd=tempfile.gettempdir())
    except OSError:
        return None
    return proc.stdout.strip() or None


# --------------------------------------------------------------------------
# The payload file


def write_payload(path, size):
    """The image bytes (pseudo-random, never all in memory) into `path`;
    return their md5 and sha512 as check_image wants them."""
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, 'wb') as f:
        for chunk in payload(size):
            f.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
    return {'md5': md5.hexdigest(), 'os_hash_value': sha512.hexdigest()}


def file_chunks(path):
    with open(path, 'rb', buffering=0) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def rate(size, seconds):
    return {'mib_s': round(size / MiB / seconds, 1),
            'seconds': round(seconds, 2)}


# --------------------------------------------------------------------------
# One round of one target


class Target:
    def __init__(self, name, ceph, args, server=None):
        self.name, self.ceph, self.args, self.server = (name, ceph, args,
                                                        server)
        self.rounds = []

    def round(self, r, path, digests):
        leftovers = self.ceph.images()
        if leftovers:
            log(f'[{self.name}] pool not empty before the round: '
                f'{sorted(leftovers)}')
        result = {'round': r, 'loadavg_1m': os.getloadavg()[0]}
        try:
            (self.limit_round if self.server is None
             else self.glance_round)(r, path, digests, result)
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            result['error'] = f'{type(e).__name__}: {e}'
            log(f'[{self.name}] round {r} failed: {e}')
        self.rounds.append(result)
        return result

    def meter(self):
        return CpuMeter(self.server.pid if self.server else None,
                        self.ceph.osd_pid())

    def limit_round(self, r, path, digests, result):
        size = self.args.size
        name = f'bench-limit-{self.args.run_id}-{r}'
        spec = f'{POOL}/{name}'
        with self.meter() as m:
            self.ceph.rbd('import', '--no-progress', '--object-size',
                          f'{self.args.chunk_size}M', path, spec)
        result['upload'] = {**rate(size, m.seconds), 'cpu': m.cpu}
        try:
            info = json.loads(self.ceph.rbd('info', '--format', 'json',
                                            spec))
            problems = [] if info.get('size') == size else [
                f"size {info.get('size')}"]
            result['image'] = {'size': info.get('size'),
                               'object_size': info.get('object_size'),
                               'verified': not problems}
            if problems:
                result['image']['problems'] = problems
            with self.meter() as m:
                proc = subprocess.Popen(self.ceph.cmd('export',
                                                      '--no-progress',
                                                      spec, '-'),
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL)
                got = read_all(proc.stdout)
                err = proc.stderr.read()
                proc.wait()
            result['download'] = {**rate(size, m.seconds), 'bytes': got,
                                  'cpu': m.cpu}
            if proc.returncode or got != size:
                result['download']['error'] = (
                    f'rbd export exited {proc.returncode}, {got} bytes: '
                    f'{err.decode(errors="replace")[-300:]}')
        finally:
            self.ceph.rbd('rm', '--no-progress', spec)
        # What every glance upload also costs: md5 then sha512 over the
        # bytes, one thread (glance_store does it while it writes).
        hashed = measure_hash(size, 'sha512')
        result['hash'] = {'mib_s': hashed['mib_s'],
                          'seconds': hashed['seconds'],
                          'what': 'md5 then sha512, one thread'}

    def glance_round(self, r, path, digests, result):
        size, args = self.args.size, self.args
        client = Client(self.server.url, DEFAULT_HEADERS, args.timeout)
        image_id = None
        try:
            image_id = client.json('POST', '/v2/images', {
                'name': f'bench-rbd-{args.run_id}-{r}',
                'disk_format': 'raw', 'container_format': 'bare'},
                expect=(201,))['id']
            result['image_id'] = image_id
            with self.meter() as m:
                client.upload(image_id, file_chunks(path),
                              size if args.upload_mode == 'length' else None)
            result['upload'] = {**rate(size, m.seconds), 'cpu': m.cpu}
            image = client.json('GET', '/v2/images/' + image_id)
            checked = check_image(image, size, digests)
            if image_id not in self.ceph.images():
                checked['verified'] = False
                checked.setdefault('problems', []).append(
                    f'no RBD image {image_id} in pool {POOL}')
            checked['stores'] = image.get('stores')
            result['image'] = checked
            with self.meter() as m:
                got = client.download(image_id)
            result['download'] = {**rate(size, m.seconds), 'bytes': got,
                                  'cpu': m.cpu}
            if got != size:
                result['download']['error'] = f'got {got} bytes'
        finally:
            if image_id:
                status, body = client.request('DELETE',
                                              '/v2/images/' + image_id)
                if status != 204:
                    result['delete_error'] = f'{status}: {excerpt(body)}'
                elif image_id in self.ceph.images():
                    result['delete_error'] = 'RBD image left in the pool'
            client.close()

    def summary(self):
        """Figures over the verified rounds: total MiB / total seconds."""
        out = {}
        for way in ('upload', 'download'):
            good = [r for r in self.rounds if usable(r, way)]
            out[way] = {
                'mib_s': round(len(good) * self.args.size / MiB / sum(
                    r[way]['seconds'] for r in good), 1) if good else None,
                'rounds_mib_s': [r[way]['mib_s'] for r in good],
                'rounds_used': len(good),
                'rounds_unusable': len(self.rounds) - len(good),
            }
        hashed = [r['hash'] for r in self.rounds if 'hash' in r]
        if hashed:
            out['hash'] = {
                'mib_s': round(len(hashed) * self.args.size / MiB / sum(
                    h['seconds'] for h in hashed), 1),
                'rounds_mib_s': [h['mib_s'] for h in hashed],
                'what': hashed[0]['what']}
        return out


def usable(result, way):
    data = result.get(way)
    return (data is not None and 'error' not in data
            and 'error' not in result
            and result.get('image', {}).get('verified', False))


def read_all(stream):
    buf = memoryview(bytearray(CHUNK))
    total = 0
    while n := stream.readinto(buf):
        total += n
    return total


def rotated(items, k):
    k %= len(items)
    return items[k:] + items[:k]


# --------------------------------------------------------------------------
# Orchestration


def compare(targets, rounds):
    """ours÷limit, ours÷upstream (and upstream÷limit), from the summaries
    and round by round (the same round ran the targets back to back)."""
    by_name = {t.name: t for t in targets}
    out = {}
    for a, b in (('ours', 'limit'), ('ours', 'upstream'),
                 ('upstream', 'limit')):
        if a not in by_name or b not in by_name:
            continue
        ta, tb = by_name[a], by_name[b]
        entry = {}
        for way in ('upload', 'download'):
            entry[way] = ratio(ta.summary()[way]['mib_s'],
                               tb.summary()[way]['mib_s'])
            per_round = []
            for r in range(rounds):
                ra = next((x for x in ta.rounds if x['round'] == r), {})
                rb = next((x for x in tb.rounds if x['round'] == r), {})
                per_round.append(ratio(ra[way]['mib_s'], rb[way]['mib_s'])
                                 if usable(ra, way) and usable(rb, way)
                                 else None)
            entry[f'{way}_per_round'] = per_round
        if b == 'limit' and 'hash' in tb.summary():
            entry['upload_vs_hash'] = ratio(ta.summary()['upload']['mib_s'],
                                            tb.summary()['hash']['mib_s'])
        out[f'{a}/{b}'] = entry
    return out


def summary_lines(targets, ratios):
    lines = {}
    for t in targets:
        s = t.summary()
        lines[t.name] = (f"upload {s['upload']['mib_s']} MiB/s "
                         f"{s['upload']['rounds_mib_s']}, download "
                         f"{s['download']['mib_s']} MiB/s "
                         f"{s['download']['rounds_mib_s']}")
        if 'hash' in s:
            lines[t.name] += (f"; hash {s['hash']['mib_s']} MiB/s "
                              f"{s['hash']['rounds_mib_s']}")
        bad = [r['round'] for r in t.rounds
               if not (usable(r, 'upload') and usable(r, 'download'))]
        if bad:
            lines[t.name] += f' (rounds {bad} unusable: see rounds)'
    for key, entry in ratios.items():
        lines[key] = (f"upload {entry['upload']}, download "
                      f"{entry['download']}") + (
            f"; upload/hash {entry['upload_vs_hash']}"
            if 'upload_vs_hash' in entry else '')
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--size', default='1G', help='image size')
    p.add_argument('--rounds', type=int, default=2,
                   help='rounds; each runs every target once, in rotated '
                   'order')
    p.add_argument('--chunk-size', type=int, default=8,
                   help='rbd_store_chunk_size (MiB) = rbd import '
                   '--object-size')
    p.add_argument('--store-mode', choices=('single', 'multi'),
                   default='single',
                   help='single-store ([glance_store] stores = rbd) or '
                   f'multi-store (enabled_backends = {STORE_ID}:rbd)')
    p.add_argument('--upload-mode', choices=('chunked', 'length'),
                   default='chunked',
                   help='request body framing: Transfer-Encoding: chunked '
                   '(as python-glanceclient) or Content-Length')
    p.add_argument('--workers', type=int, default=2,
                   help='API processes of both servers (uWSGI processes '
                   'for upstream)')
    p.add_argument('--ceph-conf',
                   help='use this cluster (its images pool) instead of '
                   'starting a micro-ceph')
    p.add_argument('--osd-bytes', default=None,
                   help='micro-ceph memstore cap (default: max(5G, '
                   '2*size+2G))')
    p.add_argument('--upstream-venv', default=UPSTREAM_VENV,
                   help='venv with glance==33.0.0 and uwsgi')
    p.add_argument('--no-upstream', action='store_true')
    p.add_argument('--no-limit', action='store_true',
                   help='skip rbd import/export')
    p.add_argument('--workdir',
                   help='keep configs and logs here (default: a temporary '
                   'directory, deleted at the end)')
    p.add_argument('--timeout', type=float, default=900.0,
                   help='seconds per request')
    args = p.parse_args(argv)
    args.size = parse_size(args.size)
    args.osd_bytes = (parse_size(args.osd_bytes) if args.osd_bytes
                      else max(5 * 1024 * MiB, 2 * args.size + 2048 * MiB))
    args.run_id = uuid.uuid4().hex[:8]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.time()
    keep = bool(args.workdir)
    workdir = (os.path.abspath(args.workdir) if keep
               else tempfile.mkdtemp(prefix='rbd-bench-'))
    os.makedirs(workdir, exist_ok=True)
    ceph = Ceph(args, workdir)
    servers, targets, failed = [], [], {}
    meta = {
        'run_id': args.run_id,
        'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started)),
        'argv': argv, 'size': size_label(args.size), 'rounds': args.rounds,
        'chunk_size_mib': args.chunk_size, 'store_mode': args.store_mode,
        'upload_mode': args.upload_mode, 'workers': args.workers,
        'host': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                 'loadavg_start': os.getloadavg()},
    }
    try:
        ceph.start()
        meta['ceph'] = ceph.info()
        path = os.path.join(workdir, 'payload.bin')
        log(f'writing {size_label(args.size)} of payload to {path}')
        digests = write_payload(path, args.size)
        if not args.no_limit:
            targets.append(Target('limit', ceph, args))
        py = os.path.join(args.upstream_venv, 'bin', 'python')
        meta['versions'] = {
            'ours_glance_store': package_version(
                os.path.join(OURS_BIN, 'python'), 'glance_store'),
            'upstream_glance': package_version(py, 'glance'),
            'upstream_glance_store': package_version(py, 'glance_store')}
        for name, start in (('ours', start_ours),
                            ('upstream', start_upstream)):
            if name == 'upstream' and args.no_upstream:
                continue
            try:
                server = start(args, workdir, ceph.conf)
            except Exception as e:  # noqa: BLE001 - reported in the JSON
                failed[name] = {'error': f'{type(e).__name__}: {e}'}
                log(f'[{name}] did not start: {e}')
                continue
            servers.append(server)
            targets.append(Target(name, ceph, args, server))
        for t in targets:
            if t.server:
                client = Client(t.server.url, DEFAULT_HEADERS, 10)
                status, body = client.request('GET', '/v2/info/stores')
                t.stores = (json.loads(body) if status == 200 else
                            f'{status} (single-store)')
                client.close()
        # Untimed: the OSD's first allocations would slow whoever came first.
        log('warm-up: rbd import + rm (untimed)')
        ceph.rbd('import', '--no-progress', '--object-size',
                 f'{args.chunk_size}M', path, f'{POOL}/bench-warmup')
        ceph.rbd('rm', '--no-progress', f'{POOL}/bench-warmup')
        for r in range(args.rounds):
            for t in rotated(targets, r):
                log(f'[{t.name}] round {r + 1}/{args.rounds}')
                res = t.round(r, path, digests)
                if 'upload' in res:
                    log(f"[{t.name}] upload {res['upload']['mib_s']} MiB/s"
                        + (f", download {res['download']['mib_s']} MiB/s"
                           if 'download' in res else '')
                        + ('' if res.get('image', {}).get('verified')
                           else ' UNVERIFIED'))
    finally:
        for server in servers:
            server.stop()
        ceph.purge()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    meta['host']['loadavg_end'] = os.getloadavg()
    meta['elapsed_s'] = round(time.time() - started, 1)
    ratios = compare(targets, args.rounds)
    doc = {
        'meta': meta,
        'ratios': ratios,
        'targets': {t.name: {
            **({'endpoint': t.server.url,
                'stores': getattr(t, 'stores', None)} if t.server
               else {'what': 'rbd import --object-size '
                     f'{args.chunk_size}M FILE / rbd export - (pipe)'}),
            **t.summary(), 'rounds': t.rounds} for t in targets}
        | failed,
        'summary': summary_lines(targets, ratios),
    }
    json.dump(doc, sys.stdout, indent=1)
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main())
