#!/usr/bin/env python3
"""Benchmark of the Images API v2 (not a test).

Measures, for one or more Glance endpoints side by side in the same run:

* create / show / list / update / delete: ops/s, p50/p99 latency and HTTP
  status classes at each client concurrency (threads, one connection each);
* upload / download MiB/s per image size, next to the practical limits
  measured in the same run (disk write, md5+os_hash hashing, file read);
* optionally the server processes' total RSS while a large image is uploaded
  and downloaded.

Prints ONE JSON document on stdout; progress goes to stderr.  Standard
library only.  See benchmarks/README.rst.
"""

import argparse
import collections
import functools
import hashlib
import http.client
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

MiB = 1024 * 1024
CHUNK = MiB
API_OPS = ('create', 'show', 'list', 'update', 'delete')
PATCH_TYPE = 'application/openstack-images-v2.1-json-patch'
DEFAULT_HEADERS = {
    'X-Identity-Status': 'Confirmed',
    'X-Roles': 'admin',
    'X-Project-Id': '6c1b2a0e5f3d4c8b9a7e1d2c3b4a5f60',
    'X-User-Id': '0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d',
}
QUICK = {'duration': 2.0, 'sizes': '16M', 'rss_size': '64M', 'dataset': 40,
         'data_trials': 1}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def parse_size(text):
    text = text.strip().upper().removesuffix('IB').removesuffix('B')
    units = {'K': 1024, 'M': MiB, 'G': 1024 * MiB}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def size_label(nbytes):
    for unit, scale in (('G', 1024 * MiB), ('M', MiB), ('K', 1024)):
        if nbytes % scale == 0:
            return f'{nbytes // scale}{unit}'
    return str(nbytes)


def excerpt(data, limit=300):
    return data[:limit].decode(errors='replace')


def split_named(value):
    """'name=value' -> (name, value); a bare value -> (None, value)."""
    name, sep, rest = value.partition('=')
    if sep and '/' not in name and ':' not in name:
        return name, rest
    return None, value


# --------------------------------------------------------------------------
# HTTP


class Client:
    """One keep-alive connection (reopened when the server closes it)."""

    def __init__(self, endpoint, headers, timeout):
        url = urllib.parse.urlsplit(endpoint)
        cls = (http.client.HTTPSConnection if url.scheme == 'https'
               else http.client.HTTPConnection)
        self.conn = cls(url.hostname, url.port, timeout=timeout)
        self.prefix = url.path.rstrip('/')
        self.headers = headers
        self.last_headers = {}

    def close(self):
        self.conn.close()

    def request(self, method, path, body=None, headers=None):
        """Return (status, body bytes); retries once on a stale connection."""
        headers = {**self.headers, **(headers or {})}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault('Content-Type', 'application/json')
        for attempt in (0, 1):
            reused = self.conn.sock is not None
            try:
                self.conn.request(method, self.prefix + path, body=body,
                                  headers=headers)
                resp = self.conn.getresponse()
                self.last_headers = resp.headers
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                self.conn.close()
                if attempt or not reused:
                    raise

    def json(self, method, path, body=None, headers=None, expect=(200,)):
        status, data = self.request(method, path, body, headers)
        if status not in expect:
            raise RuntimeError(f'{method} {path} answered {status}: '
                               f'{excerpt(data)}')
        return json.loads(data) if data else None

    def upload(self, image_id, chunks, length=None):
        """Stream chunks, with Content-Length if `length` is given, else
        with Transfer-Encoding: chunked (as python-glanceclient does)."""
        self.conn.close()
        headers = {**self.headers, 'Content-Type': 'application/octet-stream'}
        if length is not None:
            headers['Content-Length'] = str(length)
        try:
            self.conn.request('PUT',
                              f'{self.prefix}/v2/images/{image_id}/file',
                              body=chunks, headers=headers,
                              encode_chunked=length is None)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (an error); read it below
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f'upload answered {resp.status}: '
                               f'{excerpt(body)}')
        return resp.status

    def download(self, image_id):
        """GET the image data, discarding it; return the byte count."""
        self.conn.close()
        self.conn.request('GET', f'{self.prefix}/v2/images/{image_id}/file',
                          headers=self.headers)
        resp = self.conn.getresponse()
        if resp.status != 200:
            body = resp.read()
            raise RuntimeError(f'download answered {resp.status}: '
                               f'{excerpt(body)}')
        buf = memoryview(bytearray(CHUNK))
        total = 0
        while n := resp.readinto(buf):
            total += n
        return total


# --------------------------------------------------------------------------
# Generated image data, hashing and disk limits


@functools.cache
def _random_pool():
    return random.Random(20251121).randbytes(5 * MiB)


def payload(size):
    """Yield `size` pseudo-random bytes in 1 MiB chunks, the same each time.

    Chunks are 1 MiB windows at varying offsets of a 5 MiB random pool, so
    nothing large is held in memory and generation costs ~a memcpy.
    """
    pool = _random_pool()
    sent = 0
    for i in itertools.count():
        if sent >= size:
            return
        n = min(CHUNK, size - sent)
        offset = (i * 7919 * 4096) % (4 * MiB)
        yield pool[offset:offset + n]
        sent += n


def measure_hash(size, algo):
    """md5 then `algo` per chunk in one thread, as glance_store drivers do."""
    md5, other = hashlib.md5(), hashlib.new(algo)
    busy = 0.0
    for chunk in payload(size):
        t0 = time.perf_counter()
        md5.update(chunk)
        other.update(chunk)
        busy += time.perf_counter() - t0
    return {'mib_s': round(size / MiB / busy, 1), 'seconds': round(busy, 3),
            'md5': md5.hexdigest(), 'os_hash_algo': algo,
            'os_hash_value': other.hexdigest()}


def measure_dd(directory, size):
    path = os.path.join(directory, f'.api-bench-dd-{os.getpid()}.tmp')
    count = -(-size // MiB)
    t0 = time.perf_counter()
    proc = subprocess.run(
        ['dd', 'if=/dev/zero', f'of={path}', 'bs=1M', f'count={count}',
         'conv=fdatasync'], check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError('dd failed: ' + proc.stderr.strip()[-300:])
    return path, round(count / elapsed, 1)


# The pieces glance_store's filesystem driver writes (its default
# filesystem_store_chunk_size).
DRIVER_PIECE = 64 * 1024


def measure_write(directory, size):
    """Writing `size` bytes in DRIVER_PIECE pieces into the page cache of a
    new file in `directory`, as the driver does between its hash updates;
    flushing to disk afterwards is not counted."""
    path = os.path.join(directory, f'.api-bench-write-{os.getpid()}.tmp')
    piece = next(payload(DRIVER_PIECE))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        for _ in range(size // DRIVER_PIECE):
            os.write(fd, piece)
        elapsed = time.perf_counter() - t0
        os.fdatasync(fd)  # so its writeback does not slow what comes next
    finally:
        os.close(fd)
        os.unlink(path)
    return round(size / MiB / elapsed, 1)


def drop_caches():
    """Drop the page cache (root only); return None or the failure reason."""
    try:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return None
    except OSError as e:
        return str(e)


def measure_read(path):
    buf = memoryview(bytearray(CHUNK))
    total = 0
    t0 = time.perf_counter()
    with open(path, 'rb', buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return round(total / MiB / (time.perf_counter() - t0), 1), total


# --------------------------------------------------------------------------
# Server memory (sum over a process tree, from /proc)


def _proc_table():
    table = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                ppid = int(f.read().rpartition(')')[2].split()[1])
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry)] = (ppid, cmd)
    return table


def _tree(table, roots):
    children = collections.defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen and pid in table:
            seen.add(pid)
            stack.extend(children[pid])
    return seen


def _memory_kib(pid):
    rss = pss = 0
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1])
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class RssSampler(threading.Thread):
    """Samples the summed RSS (and PSS) of a pid's tree or of a name match."""

    def __init__(self, pid=None, name=None, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.name, self.interval = pid, name, interval
        self.stop_event = threading.Event()
        self.samples = []

    def processes(self):
        table = _proc_table()
        if self.pid is not None:
            return _tree(table, [self.pid])
        me = os.getpid()
        hits = {pid for pid, (_, cmd) in table.items()
                if self.name in cmd and pid != me}
        return _tree(table, [p for p in hits if table[p][0] not in hits])

    def sample(self):
        """(process count, summed RSS, summed PSS, largest RSS) in MiB."""
        mem = [_memory_kib(pid) for pid in self.processes()]
        return (len(mem), sum(m[0] for m in mem) / 1024,
                sum(m[1] for m in mem) / 1024,
                max((m[0] for m in mem), default=0) / 1024)

    def run(self):
        while not self.stop_event.is_set():
            self.samples.append(self.sample())
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()
        if not self.samples:
            self.samples.append(self.sample())
        return {
            'processes': max(s[0] for s in self.samples),
            'peak_rss_mib': round(max(s[1] for s in self.samples), 1),
            'peak_pss_mib': round(max(s[2] for s in self.samples), 1),
            'peak_process_rss_mib': round(max(s[3] for s in self.samples), 1),
            'samples': len(self.samples),
        }


# --------------------------------------------------------------------------
# API operations


class Exhausted(Exception):
    """No more images for this operation (ends that client's loop)."""


class Target:
    def __init__(self, name, endpoint, headers, args):
        self.name, self.endpoint = name, endpoint.rstrip('/')
        self.headers, self.args = headers, args
        self.data_dir = None
        self.rss = None  # ('pid', n) or ('name', substring)
        self.error = None
        self.result = {'endpoint': self.endpoint}
        self.dataset = []
        self.created = collections.deque()
        self.leftovers = []
        self.cursor = itertools.count()

    def client(self, timeout=None):
        return Client(self.endpoint, self.headers,
                      timeout or self.args.timeout)

    # Each op takes (client, state) and returns an HTTP status.

    def op_create(self, client, state):
        n = next(self.cursor)
        status, data = client.request('POST', '/v2/images', {
            'name': f'bench-new-{self.args.run_id}-{n:06d}',
            'disk_format': 'raw', 'container_format': 'bare'})
        if status == 201:
            self.created.append(json.loads(data)['id'])
        return status, data

    def op_show(self, client, state):
        image_id = self.dataset[next(self.cursor) % len(self.dataset)]
        return client.request('GET', '/v2/images/' + image_id)

    def op_list(self, client, state):
        """One page; a client walks up to --list-pages pages per query."""
        if not state.get('next') or state['page'] >= self.args.list_pages:
            query = self.list_queries[next(self.cursor)
                                      % len(self.list_queries)]
            state['next'], state['page'] = '/v2/images?' + query, 0
        status, data = client.request('GET', state['next'])
        state['page'] += 1
        state['next'] = json.loads(data).get('next') if status == 200 else None
        return status, data

    def op_update(self, client, state):
        n = next(self.cursor)
        image_id = self.dataset[n % len(self.dataset)]
        return client.request(
            'PATCH', '/v2/images/' + image_id,
            [{'op': 'replace', 'path': '/bench_counter', 'value': str(n)},
             {'op': 'add', 'path': '/bench_note', 'value': f'note {n}'}],
            {'Content-Type': PATCH_TYPE})

    def op_delete(self, client, state):
        try:
            image_id = self.created.popleft()
        except IndexError:
            raise Exhausted() from None
        status, data = client.request('DELETE', '/v2/images/' + image_id)
        if status != 204:
            self.leftovers.append(image_id)  # retried once at cleanup
        return status, data

    @property
    def list_queries(self):
        tag = urllib.parse.urlencode({'bench_set': self.args.run_id})
        return ['limit=20&sort=name:asc&status=active&' + tag,
                'limit=20&sort=created_at:desc&disk_format=raw&' + tag,
                'limit=20&sort_key=size&sort_key=name&sort_dir=desc'
                '&container_format=bare&' + tag]

    # Setup and cleanup (untimed)

    def preflight(self):
        """Check that the target serves images; note what answers."""
        client = self.client(timeout=10)
        try:
            status, data = client.request('GET', '/v2/images?limit=1')
            server_header = client.last_headers.get('Server')
            if status != 200:
                raise RuntimeError(f'GET /v2/images answered {status}: '
                                   f'{excerpt(data)}')
            # To tell servers apart (e.g. an "upstream" that imported
            # another glance package): the Server header and the stores.
            stores_status, stores = client.request('GET', '/v2/info/stores')
            try:
                stores = [s.get('id') for s in json.loads(stores)['stores']]
            except (ValueError, KeyError, TypeError, AttributeError):
                stores = None
            self.result['server'] = {'server_header': server_header,
                                     'info_stores': stores_status,
                                     'stores': stores}
        finally:
            client.close()

    def create_image(self, client, name, **props):
        body = {'name': name, 'disk_format': 'raw',
                'container_format': 'bare', **props}
        return client.json('POST', '/v2/images', body, expect=(201,))['id']

    def build_dataset(self, count):
        """`count` images, half of them active (1 KiB of data)."""
        client = self.client()
        names = list(range(count))
        random.Random(7).shuffle(names)
        try:
            for i, n in enumerate(names):
                image_id = self.create_image(
                    client, f'bench-{self.args.run_id}-{n:04d}',
                    bench_set=self.args.run_id, bench_counter='0')
                if i % 2:
                    client.upload(image_id, [random.randbytes(1024)])
                self.dataset.append(image_id)
        finally:
            client.close()

    def fill_delete_pool(self, count):
        client = self.client()
        try:
            for i in range(count):
                self.created.append(self.create_image(
                    client, f'bench-del-{self.args.run_id}-{i:06d}'))
        finally:
            client.close()

    def delete_images(self, ids):
        """Best-effort cleanup, logging what could not be deleted; returns
        how many were deleted (or already gone)."""
        client = self.client()
        failed = collections.Counter()
        try:
            for image_id in ids:
                try:
                    status, _ = client.request('DELETE',
                                               '/v2/images/' + image_id)
                except (OSError, http.client.HTTPException):
                    status = 0
                if status not in (204, 404):
                    failed[status] += 1
        finally:
            client.close()
        if failed:
            log(f'[{self.name}] cleanup: {sum(failed.values())} image(s) not '
                f'deleted, status {dict(failed)}')
        return len(ids) - sum(failed.values())


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = math.ceil(fraction * len(sorted_values)) - 1  # nearest rank
    return sorted_values[min(max(index, 0), len(sorted_values) - 1)]


class Measurement:
    """One op at one concurrency on one target, over one or more slices."""

    def __init__(self):
        self.latencies, self.codes = [], collections.Counter()
        self.seconds = self.cpu = 0.0
        self.error_samples, self.loads = [], []  # 5xx bodies, client errors
        self.exhausted = False

    def run_slice(self, target, op, clients, duration, max_ops):
        """Run `op` from `clients` threads for `duration` s or `max_ops`."""
        func = getattr(target, 'op_' + op)
        issued = itertools.count()
        results = [[] for _ in range(clients)]
        start = time.perf_counter()
        deadline = start + duration

        def worker(records):
            client, state = target.client(), {}
            try:
                while True:
                    if max_ops:
                        if next(issued) >= max_ops:
                            break
                    elif time.perf_counter() >= deadline:
                        break
                    t0 = time.perf_counter()
                    try:
                        status, body = func(client, state)
                    except Exhausted:
                        self.exhausted = True
                        break
                    except Exception as e:  # noqa: BLE001 - counted
                        client.close()
                        status, body = 0, repr(e).encode()
                    t1 = time.perf_counter()
                    records.append((t1 - t0, status, t1))
                    if (status >= 500 or not status) and len(
                            self.error_samples) < 3:
                        self.error_samples.append(excerpt(body))
            finally:
                client.close()

        cpu0 = time.process_time()
        threads = [threading.Thread(target=worker, args=(r,))
                   for r in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.cpu += time.process_time() - cpu0
        records = [r for rs in results for r in rs]
        if records:
            self.seconds += max(r[2] for r in records) - start
        self.latencies += [r[0] * 1000 for r in records]
        self.codes.update(r[1] for r in records)
        self.loads.append(os.getloadavg()[0])

    def stats(self):
        latencies = sorted(self.latencies)
        elapsed = max(self.seconds, 1e-9)
        classes = collections.Counter()
        for code, count in self.codes.items():
            classes['error' if code == 0 else f'{code // 100}xx'] += count
        stats = {
            'ops_s': round(classes.get('2xx', 0) / elapsed, 1),
            'requests': len(latencies),
            'requests_s': round(len(latencies) / elapsed, 1),
            'p50_ms': _round(percentile(latencies, 0.50)),
            'p99_ms': _round(percentile(latencies, 0.99)),
            'mean_ms': _round(sum(latencies) / len(latencies))
            if latencies else None,
            'seconds': round(self.seconds, 2),
            'status': dict(sorted(self.codes.items())),
            'classes': dict(sorted(classes.items())),
            '5xx': classes.get('5xx', 0),
            'client_cpu_pct': round(100 * self.cpu / elapsed, 1),
            'loadavg_1m': max(self.loads, default=None),
        }
        if self.error_samples:
            stats['sample_errors'] = self.error_samples
        if self.exhausted:
            stats['exhausted_images'] = True
        return stats


def _round(value):
    return None if value is None else round(value, 2)


# --------------------------------------------------------------------------
# Data transfer


def transfer(target, size, digests=None):
    """Create an image, upload `size` bytes, check it, download; timed."""
    client = target.client(timeout=max(target.args.timeout, 600))
    result = {}
    try:
        image_id = target.create_image(
            client, f'bench-data-{target.args.run_id}-{size_label(size)}')
        result['image_id'] = image_id
        t0 = time.perf_counter()
        client.upload(image_id, payload(size),
                      size if target.args.upload_mode == 'length' else None)
        elapsed = time.perf_counter() - t0
        result['upload'] = {'mib_s': round(size / MiB / elapsed, 1),
                            'seconds': round(elapsed, 2)}
        result['image'] = check_image(
            client.json('GET', '/v2/images/' + image_id), size, digests)
        if target.args.drop_caches:
            result['drop_caches_error'] = drop_caches()
        t0 = time.perf_counter()
        got = client.download(image_id)
        elapsed = time.perf_counter() - t0
        result['download'] = {'mib_s': round(size / MiB / elapsed, 1),
                              'seconds': round(elapsed, 2), 'bytes': got}
        if got != size:
            result['download']['error'] = f'got {got} bytes, expected {size}'
    finally:
        client.close()
    return result


def check_image(image, size, digests):
    """The uploaded image's status and size, and hashes if `digests`."""
    problems = []
    if image.get('status') != 'active':
        problems.append(f"status {image.get('status')}")
    if image.get('size') != size:
        problems.append(f"size {image.get('size')}")
    if digests and image.get('checksum') != digests['md5']:
        problems.append('checksum mismatch')
    if digests and image.get('os_hash_value') != digests['os_hash_value']:
        problems.append('os_hash_value mismatch (%s)'
                        % image.get('os_hash_algo'))
    checked = {'status': image.get('status'), 'size': image.get('size'),
               'os_hash_algo': image.get('os_hash_algo'),
               'verified': not problems}
    if problems:
        checked['problems'] = problems
    return checked


def stored_file(data_dir, image_id):
    path = os.path.join(data_dir, image_id)
    return path if os.path.isfile(path) else None


def remove_leftover(target, image_id):
    """Remove a deleted image's file left in the target's store, as the
    scrubber would: with delayed_delete it stays (pending_delete), and the
    pile of such files in the page cache made each later upload slower on
    this VM. Its fresh page-cache pages cost the writing thread 4-6x more
    CPU once about 5 GiB had accumulated since the last cache drop.
    Returns whether a file was removed."""
    path = target.data_dir and stored_file(target.data_dir, image_id)
    if path:
        os.unlink(path)
    return bool(path)


def hash_then_write(hash_mib_s, write_mib_s):
    """The speed of one thread that hashes each piece and then writes it,
    as glance_store's drivers do: the two costs add up."""
    return round(1 / (1 / hash_mib_s + 1 / write_mib_s), 1)


def measure_data_size(target, size, digests):
    """Upload/download one size, with the dd write and file read limits.

    The dd file is written after the transfer, not before: held in the page
    cache during the upload, it made the server's writes land on pages this
    VM had handed back to its host (free page reporting), which cost the
    store driver far more CPU than pages just freed by the write test."""
    args = target.args
    scratch = target.data_dir or args.scratch_dir
    write_mib_s = measure_write(scratch, size)
    result = transfer(target, size, digests)
    hash_after = measure_hash(size, args.hash_algo)['mib_s']
    dd_path, dd_mib_s = measure_dd(scratch, size)
    try:
        path = target.data_dir and stored_file(target.data_dir,
                                               result['image_id'])
        cache = 'warm'
        if args.drop_caches:
            reason = drop_caches()
            cache = 'cold' if reason is None else f'warm ({reason})'
        read_mib_s, _ = measure_read(path or dd_path)
    finally:
        os.unlink(dd_path)
    hash_mib_s = round((digests['mib_s'] + hash_after) / 2, 1)
    upload_limit = min(dd_mib_s, hash_mib_s)
    result['limit'] = {
        'dd_write_mib_s': dd_mib_s,
        'dd_dir': scratch,
        'hash_mib_s': hash_mib_s,
        'hash_before_mib_s': digests['mib_s'],
        'hash_after_mib_s': hash_after,
        'hash': f'md5 then {args.hash_algo}, one thread',
        'upload_limit_mib_s': upload_limit,
        'upload_limit_by': 'dd' if dd_mib_s <= hash_mib_s else 'hash',
        'write_mib_s': write_mib_s,
        'hash_then_write_mib_s': hash_then_write(hash_mib_s, write_mib_s),
        'read_mib_s': read_mib_s,
        'read_source': 'stored image file' if path else 'dd file',
        'read_cache': cache,
    }
    result['upload_vs_limit'] = round(
        result['upload']['mib_s'] / upload_limit, 3)
    result['upload_vs_hash_then_write'] = round(
        result['upload']['mib_s'] / result['limit']['hash_then_write_mib_s'],
        3)
    result['download_vs_limit'] = round(
        result['download']['mib_s'] / read_mib_s, 3)
    if not args.keep and target.delete_images([result['image_id']]):
        result['leftover_removed'] = remove_leftover(target,
                                                     result['image_id'])
    return result


def measure_rss(target, size):
    kind, value = target.rss
    sampler = (RssSampler(pid=value) if kind == 'pid'
               else RssSampler(name=value))
    before = sampler.sample()
    if not before[0]:
        raise RuntimeError(f'no process matches {kind}={value}')
    sampler.start()
    try:
        result = transfer(target, size)
    finally:
        peak = sampler.stop()
    if not target.args.keep and target.delete_images([result['image_id']]):
        remove_leftover(target, result['image_id'])
    return {'size': size_label(size), 'match': f'{kind}={value}',
            'before_rss_mib': round(before[1], 1),
            'before_pss_mib': round(before[2], 1), **peak,
            'growth_rss_mib': round(peak['peak_rss_mib'] - before[1], 1),
            'upload_mib_s': result['upload']['mib_s'],
            'download_mib_s': result['download']['mib_s'],
            'image': result['image']}


# --------------------------------------------------------------------------
# Orchestration


def rotated(targets, k):
    """The live targets, starting at the k-th, to share the machine's noise."""
    live = [t for t in targets if not t.error]
    if not live:
        return []
    k %= len(live)
    return live[k:] + live[:k]


def guarded(target, section, key, func, *args):
    """Store func(*args) at target.result[section][key]; record errors."""
    try:
        value = func(*args)
    except Exception as e:  # noqa: BLE001 - a failing target must not end the run
        value = {'error': f'{type(e).__name__}: {e}'}
        log(f'[{target.name}] {section} {key} failed: {e}')
    stored = target.result.setdefault(section, {})
    if stored.get(key) is None:  # keep the first error of a repeated call
        stored[key] = value
    return value


def run_api(targets, args):
    for target in rotated(targets, 0):
        log(f'[{target.name}] building a dataset of {args.dataset} images')
        try:
            target.build_dataset(args.dataset)
        except Exception as e:  # noqa: BLE001 - reported in the JSON
            target.error = f'dataset: {type(e).__name__}: {e}'
            log(f'[{target.name}] {target.error}')
    k = 0
    for clients in args.clients:
        for op in args.api_ops:
            live = rotated(targets, 0)
            runs = {t.name: Measurement() for t in live}
            if op == 'delete' and 'create' not in args.api_ops:
                for target in live:
                    target.fill_delete_pool(args.ops or 200)
            # Slices alternate between targets to share the machine's noise.
            for r in range(args.rounds):
                for target in rotated(live, k + r):
                    guarded(target, 'api', f'{op}@{clients}',
                            runs[target.name].run_slice, target, op, clients,
                            args.duration / args.rounds,
                            -(-args.ops // args.rounds))
            for target in live:
                key = f'{op}@{clients}'
                if target.result['api'][key] is not None:
                    continue  # a slice failed: the error stays
                s = target.result['api'][key] = runs[target.name].stats()
                log(f"[{target.name}] {op:6} c={clients}: "
                    f"{s['ops_s']:7.1f} ops/s p50 {s['p50_ms']} ms "
                    f"p99 {s['p99_ms']} ms status {s['status']}")
            k += 1
        for target in targets:
            if not args.keep:
                target.delete_images([*target.created, *target.leftovers])
            target.created.clear()
            target.leftovers.clear()


def run_data(targets, args):
    """Each size, --data-trials times, the targets in turn: the hashing
    limit is measured right before and right after each transfer (their
    mean), because this machine's speed drifts by tens of percent within
    a minute."""
    for k, size in enumerate(args.sizes):
        label = size_label(size)
        trials = {target.name: [] for target in targets}
        for trial in range(args.data_trials):
            for target in rotated(targets, k + trial):
                log(f'[{target.name}] {label} trial {trial + 1}: hashing '
                    f'(md5 then {args.hash_algo}), upload, download')
                r = guarded_trial(target, size)
                trials[target.name].append(r)
                if 'upload' in r:
                    log(f"[{target.name}] {label}: upload "
                        f"{r['upload']['mib_s']} MiB/s (limit "
                        f"{r['limit']['upload_limit_mib_s']}), download "
                        f"{r['download']['mib_s']} MiB/s (read "
                        f"{r['limit']['read_mib_s']})")
        for target in targets:
            if trials[target.name]:
                target.result.setdefault('data', {})[label] = \
                    median_trial(trials[target.name])


def guarded_trial(target, size):
    try:
        digests = measure_hash(size, target.args.hash_algo)
        return measure_data_size(target, size, digests)
    except Exception as e:  # noqa: BLE001 - a failing target must not end the run
        log(f'[{target.name}] data {size_label(size)} failed: {e}')
        return {'error': f'{type(e).__name__}: {e}'}


def median(values):
    return round(statistics.median(values), 3)


def median_trial(trials):
    """The trials' medians, figure by figure, with every trial kept."""
    done = [t for t in trials if 'error' not in t]
    if not done:
        return {**trials[0], 'trials': trials}
    # A failed trial is not outvoted by the others: it marks the size.
    problems = [p for t in done for p in t['image'].get('problems', ())] + [
        f"a trial failed: {t['error']}" for t in trials if 'error' in t]
    image = {**done[0]['image'], 'verified': not problems}
    if problems:
        image['problems'] = problems
    limit = {key: median([t['limit'][key] for t in done]) for key in
             ('dd_write_mib_s', 'hash_mib_s', 'hash_before_mib_s',
              'hash_after_mib_s', 'upload_limit_mib_s',
              'write_mib_s', 'hash_then_write_mib_s', 'read_mib_s')}
    limit['upload_limit_by'] = ('dd' if limit['dd_write_mib_s']
                                <= limit['hash_mib_s'] else 'hash')
    return {
        'upload': {'mib_s': median([t['upload']['mib_s'] for t in done])},
        'download': {'mib_s': median([t['download']['mib_s']
                                      for t in done])},
        'image': image,
        'limit': {**done[0]['limit'], **limit},
        'upload_vs_limit': median([t['upload_vs_limit'] for t in done]),
        'upload_vs_hash_then_write': median(
            [t['upload_vs_hash_then_write'] for t in done]),
        'download_vs_limit': median([t['download_vs_limit'] for t in done]),
        'trials': trials,
    }


def run_rss(targets, args):
    label = size_label(args.rss_size)
    for target in rotated(targets, 0):
        if target.rss:
            log(f'[{target.name}] RSS during a {label} upload+download')
            r = guarded(target, 'rss', label, measure_rss, target,
                        args.rss_size)
            if 'peak_rss_mib' in r:
                log(f"[{target.name}] peak RSS {r['peak_rss_mib']} MiB "
                    f"(PSS {r['peak_pss_mib']}) over {r['processes']} "
                    "processes")


def verified(data):
    return data.get('image', {}).get('verified', False)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def ratios(targets, baseline):
    """Each target's ops/s and MiB/s divided by the baseline's."""
    base = next((t for t in targets if t.name == baseline), None)
    if base is None or base.error:
        return {}
    out = {}
    for target in targets:
        if target is base or target.error:
            continue
        entry = {'api': {}, 'data': {}}
        for key, stats in target.result.get('api', {}).items():
            other = base.result.get('api', {}).get(key, {})
            entry['api'][key] = ratio(stats.get('ops_s'), other.get('ops_s'))
        for label, data in target.result.get('data', {}).items():
            other = base.result.get('data', {}).get(label, {})
            if not (verified(data) and verified(other)):
                entry['data'][label] = 'not comparable: an upload failed ' \
                    'its check (see image.problems)'
                continue
            entry['data'][label] = {
                way: ratio(data[way]['mib_s'], other[way]['mib_s'])
                for way in ('upload', 'download')}
        out[f'{target.name}/{base.name}'] = entry
    return out


def summary(target):
    """One line per figure, for notes and eyeballing."""
    lines = {}
    for key, s in target.result.get('api', {}).items():
        lines[key] = (f"error: {s['error']}" if 'error' in s else
                      f"{s['ops_s']} ops/s p50 {s['p50_ms']} ms "
                      f"p99 {s['p99_ms']} ms 5xx {s['5xx']}/{s['requests']}")
    for label, d in target.result.get('data', {}).items():
        if 'error' in d:
            lines[f'data@{label}'] = f"error: {d['error']}"
            continue
        lim = d['limit']
        lines[f'data@{label}'] = ('' if verified(d) else
                                  f"INVALID ({d['image']['problems']}): ") + (
            f"upload {d['upload']['mib_s']} MiB/s = "
            f"{d['upload_vs_limit']:.0%} of limit "
            f"{lim['upload_limit_mib_s']} (dd {lim['dd_write_mib_s']}, "
            f"hash {lim['hash_mib_s']}), "
            f"{d['upload_vs_hash_then_write']:.0%} of hash then write "
            f"{lim['hash_then_write_mib_s']}; "
            f"download {d['download']['mib_s']} MiB/s = "
            f"{d['download_vs_limit']:.0%} of {lim['read_cache']} "
            f"read {lim['read_mib_s']}")
    for label, r in target.result.get('rss', {}).items():
        lines[f'rss@{label}'] = (
            f"error: {r['error']}" if 'error' in r else
            f"peak RSS {r['peak_rss_mib']} MiB summed over {r['processes']} "
            f"processes (before {r['before_rss_mib']}; PSS "
            f"{r['peak_pss_mib']}; largest process "
            f"{r['peak_process_rss_mib']}); upload {r['upload_mib_s']} "
            f"MiB/s, download {r['download_mib_s']} MiB/s" + (
                '' if verified(r) else
                f"; INVALID: {r['image'].get('problems')}"))
    return lines


def build_targets(args):
    specs = [split_named(v) for v in args.target]
    specs += [(None, v) for v in args.endpoint]
    if not specs:
        sys.exit('give at least one --target NAME=URL or --endpoint URL')
    headers = {} if args.no_default_headers else dict(DEFAULT_HEADERS)
    for h in args.header:
        name, sep, value = h.partition(':')
        if not sep:
            sys.exit(f'--header wants "Name: value", got {h!r}')
        headers[name.strip()] = value.strip()
    targets = [Target(name or urllib.parse.urlsplit(url).netloc or url, url,
                      headers, args) for name, url in specs]
    by_name = {t.name: t for t in targets}

    def assign(values, attr, convert, bare_for_all):
        for value in values:
            name, rest = split_named(value)
            if name is None:
                if not bare_for_all and len(targets) > 1:
                    sys.exit(f'with several targets use NAME=VALUE: {value!r}')
                chosen = targets
            elif name in by_name:
                chosen = [by_name[name]]
            else:
                sys.exit(f'unknown target {name!r} in {value!r}')
            for target in chosen:
                setattr(target, attr, convert(rest))

    assign(args.data_dir, 'data_dir', os.path.abspath, True)
    assign(args.rss_pid, 'rss', lambda v: ('pid', int(v)), False)
    assign(args.rss_name, 'rss', lambda v: ('name', v), False)
    return targets


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--target', action='append', default=[],
                   metavar='NAME=URL', help='endpoint to measure, named')
    p.add_argument('--endpoint', action='append', default=[], metavar='URL',
                   help='endpoint to measure, named by host:port')
    p.add_argument('--baseline', default='upstream',
                   help='target the others are divided by in "ratios"')
    p.add_argument('--header', '--headers', action='append', default=[],
                   metavar='"NAME: VALUE"',
                   help='request header (adds to/overrides the defaults: '
                   'X-Identity-Status: Confirmed, X-Roles: admin, '
                   'X-Project-Id, X-User-Id)')
    p.add_argument('--no-default-headers', action='store_true',
                   help='send no identity headers unless given by --header')
    p.add_argument('--clients', default='1,8',
                   help='comma-separated client concurrencies')
    p.add_argument('--duration', type=float, default=8.0,
                   help='seconds per API measurement')
    p.add_argument('--ops', type=int, default=0,
                   help='requests per API measurement (instead of '
                   '--duration)')
    p.add_argument('--rounds', type=int, default=2,
                   help='slices each API measurement is split into, '
                   'alternating between targets')
    p.add_argument('--api-ops', default=','.join(API_OPS),
                   help='API operations to measure')
    p.add_argument('--dataset', type=int, default=100,
                   help='images created before show/list/update (half '
                   'active)')
    p.add_argument('--list-pages', type=int, default=3,
                   help='pages followed through "next" per list query')
    p.add_argument('--sizes', default='256M,1G',
                   help='upload/download image sizes')
    p.add_argument('--data-trials', type=int, default=3,
                   help='uploads/downloads per target and size (medians '
                   'reported, each next to its own hashing limit)')
    p.add_argument('--upload-mode', choices=('chunked', 'length'),
                   default='chunked',
                   help='request body framing: Transfer-Encoding: chunked '
                   '(as python-glanceclient) or Content-Length')
    p.add_argument('--hash-algo', default='sha512',
                   help="the server's os_hash algorithm (hashing limit)")
    p.add_argument('--data-dir', action='append', default=[],
                   metavar='[NAME=]DIR',
                   help="target's filesystem store directory (dd limit "
                   'there, download limit = read of the stored file)')
    p.add_argument('--scratch-dir', default=tempfile.gettempdir(),
                   help='where dd writes when a target has no --data-dir')
    p.add_argument('--drop-caches', action='store_true',
                   help='drop the page cache before each download and '
                   'limit read (root; default: both read warm)')
    p.add_argument('--skip-api', action='store_true')
    p.add_argument('--skip-data', action='store_true')
    p.add_argument('--rss-pid', action='append', default=[],
                   metavar='[NAME=]PID',
                   help='server pid whose process tree RSS is sampled')
    p.add_argument('--rss-name', action='append', default=[],
                   metavar='[NAME=]TEXT',
                   help='sample the process trees whose command line '
                   'contains TEXT (every match: prefer --rss-pid on a '
                   'shared machine)')
    p.add_argument('--rss-size', default='2G',
                   help='image size uploaded+downloaded while sampling RSS')
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds per request (data transfers: >= 600)')
    p.add_argument('--keep', action='store_true',
                   help='do not delete the images the benchmark created')
    quick = ', '.join(f'{k}={v}' for k, v in QUICK.items())
    p.add_argument('--quick', action='store_true',
                   help=f'smoke run ({quick} unless given)')
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    if args.data_trials < 1:
        p.error('--data-trials must be at least 1')
    args.clients = [int(c) for c in args.clients.split(',') if c]
    args.api_ops = [o for o in args.api_ops.split(',') if o]
    unknown = set(args.api_ops) - set(API_OPS)
    if unknown:
        p.error(f"unknown --api-ops: {', '.join(sorted(unknown))}")
    args.sizes = [parse_size(s) for s in args.sizes.split(',') if s]
    args.rss_size = parse_size(args.rss_size)
    hashlib.new(args.hash_algo)
    args.run_id = uuid.uuid4().hex[:8]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    targets = build_targets(args)
    started = time.time()
    meta = {
        'run_id': args.run_id,
        'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started)),
        'argv': argv,
        'host': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                 'loadavg_start': os.getloadavg()},
        'clients': args.clients, 'duration_s': args.duration,
        'rounds': args.rounds,
        'ops_per_measurement': args.ops or None,
        'sizes': [size_label(s) for s in args.sizes],
        'upload_mode': args.upload_mode,
        'data_trials': args.data_trials,
        'quick': args.quick,
    }
    for target in targets:
        try:
            target.preflight()
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            target.error = f'{type(e).__name__}: {e}'
            log(f'[{target.name}] skipped: {target.error}')
    if not args.skip_api and args.api_ops:
        run_api(targets, args)
    if not args.skip_data:
        run_data(targets, args)
    if any(t.rss for t in targets):
        run_rss(targets, args)
    for target in targets:
        if target.dataset and not args.keep:
            target.delete_images(target.dataset)
    meta['host']['loadavg_end'] = os.getloadavg()
    meta['elapsed_s'] = round(time.time() - started, 1)
    doc = {
        'meta': meta,
        'targets': {t.name: {**t.result, 'error': t.error} for t in targets},
        'ratios': ratios(targets, args.baseline),
        'summary': {t.name: summary(t) for t in targets if not t.error},
    }
    json.dump(doc, sys.stdout, indent=1)
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main())
