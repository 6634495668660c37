"""An instrumented filesystem store for the scrubber tests.

``CountingStore`` is glance_store's filesystem driver that also appends
one line per ``delete`` call to the file named by ``SCRUB_STORE_LOG``:

    <pid> <monotonic start> <monotonic end> <outcome> <path>

(outcome ``ok``, ``notfound`` or the exception's class name), and that
waits ``SCRUB_STORE_DELAY`` seconds (a green sleep under the scrubber's
monkey-patching) before it deletes, to give deletes a latency.

It is loaded the way glance_store loads any driver: through the
``glance_store.drivers`` entry point group. ``install_driver(dir)`` writes
a distribution (``.dist-info`` with the entry point ``counting_file``)
into ``dir``; a process with ``dir`` on ``PYTHONPATH`` and
``[glance_store] stores = counting_file`` uses it for ``file://`` URLs.
"""

import os
import time

from glance_store import exceptions as store_exc
from glance_store._drivers import filesystem

ENTRY_POINT = 'counting_file'
LOG_ENV = 'SCRUB_STORE_LOG'
DELAY_ENV = 'SCRUB_STORE_DELAY'


# glance_store finds a driver's location class by name in its module.
StoreLocation = filesystem.StoreLocation


class CountingStore(filesystem.Store):

    def delete(self, location, context=None):
        delay = float(os.environ.get(DELAY_ENV) or 0)
        started = time.monotonic()
        if delay:
            time.sleep(delay)
        outcome = 'ok'
        try:
            return super().delete(location, context=context)
        except store_exc.NotFound:
            outcome = 'notfound'
            raise
        except Exception as e:
            outcome = type(e).__name__
            raise
        finally:
            _record(started, outcome, location.store_location.path)


def _record(started, outcome, path):
    log = os.environ.get(LOG_ENV)
    if not log:
        return
    line = (f'{os.getpid()} {started:.6f} {time.monotonic():.6f} {outcome} '
            f'{path}\n')
    # One write of a short line to an O_APPEND file: lines of several
    # processes never interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def install_driver(directory):
    """Make ``directory`` (to be put on PYTHONPATH) hold a distribution
    whose ``glance_store.drivers`` entry point ``counting_file`` is
    CountingStore; returns ``directory``."""
    dist_info = os.path.join(str(directory),
                             'glance_scrub_counting_store-1.0.dist-info')
    os.makedirs(dist_info, exist_ok=True)
    with open(os.path.join(dist_info, 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: glance-scrub-counting-store\n'
                'Version: 1.0\n')
    with open(os.path.join(dist_info, 'entry_points.txt'), 'w') as f:
        f.write('[glance_store.drivers]\n'
                f'{ENTRY_POINT} = {__name__}:CountingStore\n')
    return str(directory)


class DeleteLog:
    """The lines ``CountingStore`` wrote: ``calls`` is a list of
    ``(pid, started, ended, outcome, path)``."""

    def __init__(self, path):
        self.path = str(path)

    @property
    def calls(self):
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        calls = []
        for line in lines:
            pid, started, ended, outcome, path = line.split(' ', 4)
            calls.append((int(pid), float(started), float(ended), outcome,
                          path))
        return calls

    def paths(self, outcome=None):
        return [c[4] for c in self.calls if outcome in (None, c[3])]
