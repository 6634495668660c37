"""The scrubber daemon runs for days (issue 7, item 1): 10,000 wake-ups
with ``wakeup_time = 0`` against an empty SQLite database, with memory
(RSS) and stack depth flat between the first and the last 1,000 runs.
Upstream's daemon recurses once per wake-up and dies after about 980
(reference glance-compat.md §5.5).

The daemon loop (``scrubber.Daemon(worker).serve(max_runs=...)``) runs in a
child Python process set up as ``glance-scrubber`` sets itself up
(eventlet monkey-patching, config file, logging to a file), so that
neither pytest's log capture nor its threads weigh on the measure.
"""

import json
import subprocess
import sys

from tests.conftest import sync_database
from tests.helpers import REPO_ROOT, write_conf

RUNS = 10_000
WINDOW = 1_000

CHILD = r'''
import sys

import glance.cmd.scrubber  # noqa: F401  (monkey-patches, as the command)

import array
import json
import time

from glance.cmd import common as cmd
from glance.db import api as db_api
from glance import scrubber

runs, conf_file = int(sys.argv[1]), sys.argv[2]
cmd.load_config(['--config-file', conf_file], 'glance-scrubber', [])
cmd.setup_logging('glance-scrubber')


def rss_kib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])


def stack_depth():
    depth, frame = 0, sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


db_api.connect()
worker = scrubber.Scrubber()
real_run = worker.run
# Preallocated, so that the measure itself doesn't grow the heap.
depths, rss = array.array('q', [0] * runs), array.array('q', [0] * runs)
count = array.array('q', [0])


def run(*args, **kwargs):
    i = count[0]
    depths[i] = stack_depth()
    try:
        return real_run(*args, **kwargs)
    finally:
        rss[i] = rss_kib()
        count[0] = i + 1


worker.run = run
started, cpu = time.monotonic(), time.process_time()
served = scrubber.Daemon(worker).serve(max_runs=runs)
print(json.dumps({'served': served, 'runs': count[0],
                  'depths': list(depths), 'rss': list(rss),
                  'seconds': time.monotonic() - started,
                  'cpu_seconds': time.process_time() - cpu}))
'''


def test_daemon_10000_wakeups_memory_and_stack_flat(tmp_path):
    url = f'sqlite:///{tmp_path}/glance.sqlite'
    sync_database(url)
    log_file = tmp_path / 'scrubber.log'
    conf = write_conf(tmp_path / 'glance-scrubber.conf', {
        'DEFAULT': {'wakeup_time': 0, 'scrub_pool_size': 4,
                    'log_file': log_file},
        'database': {'connection': url},
    })

    result = subprocess.run(
        [sys.executable, '-c', CHILD, str(RUNS), conf], check=False,
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    depths, rss = report['depths'], report['rss']
    assert report['served'] == report['runs'] == RUNS
    assert len(depths) == RUNS
    # A loop, not a recursion: the same depth at every wake-up.
    assert set(depths) == {depths[0]}, (min(depths), max(depths))
    # Memory: the last 1,000 runs hold what the first 1,000 held once
    # warmed up (a leak of 100 bytes a run would add ~900 KiB).
    first = max(rss[WINDOW // 2:WINDOW])
    last = max(rss[-WINDOW:])
    assert last - first < 512, (
        f'RSS grew from {first} KiB to {last} KiB over {RUNS - WINDOW} runs')
    # Every run logged its progress line, and nothing went wrong.
    with open(log_file) as f:
        log = f.read()
    assert log.count('Scrub run: 0 images (0 locations) scrubbed') == RUNS
    assert ' ERROR ' not in log
    per_run_ms = 1000 * report['seconds'] / RUNS
    print(f'\n{RUNS} wake-ups in {report["seconds"]:.1f} s '
          f'({per_run_ms:.2f} ms a run, {report["cpu_seconds"]:.1f} s CPU); '
          f'stack depth {depths[0]}; RSS {first} -> {last} KiB')
