"""The real glance-api process, started per test module on a free port."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.helpers import REPO_ROOT
from tests.helpers import child_pids
from tests.helpers import free_port
from tests.helpers import run_command  # noqa: F401 (tests import it)
from tests.helpers import write_conf

PASTE_INI = os.path.join(REPO_ROOT, 'etc', 'glance-api-paste.ini')


class GlanceServer:
    """A glance-api process with its own config, database and image dir.

    ``options`` is ``{section: {key: value}}`` laid over the defaults
    (127.0.0.1 on a free port, 2 workers, SQLite in ``base_dir``, the
    filesystem store in ``base_dir/images``, the repository's paste file).
    """

    def __init__(self, base_dir, options=None, database_url=None):
        self.base_dir = str(base_dir)
        self.options = options or {}
        self.images_dir = os.path.join(self.base_dir, 'images')
        self.conf_file = os.path.join(self.base_dir, 'glance-api.conf')
        self.log_file = os.path.join(self.base_dir, 'glance-api.log')
        self.database_url = database_url or 'sqlite:///%s' % os.path.join(
            self.base_dir, 'glance.sqlite')
        self.process = None
        self._write_conf(free_port())

    def _write_conf(self, port):
        sections = {
            'DEFAULT': {'bind_host': '127.0.0.1', 'bind_port': port,
                        'workers': 2},
            'database': {'connection': self.database_url},
            'glance_store': {'filesystem_store_datadir': self.images_dir},
            'paste_deploy': {'config_file': PASTE_INI},
        }
        for section, values in self.options.items():
            sections.setdefault(section, {}).update(values)
        self.port = int(sections['DEFAULT']['bind_port'])
        self.url = 'http://127.0.0.1:%d' % self.port
        write_conf(self.conf_file, sections)

    def manage(self, *args):
        return run_command('manage', self.conf_file, *args)

    def start(self, timeout=60):
        synced = self.manage('db', 'sync')
        assert synced.returncode == 0, synced.stderr
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                # Someone took the free port between our probe and the
                # server's bind: try another one, unless the test chose it.
                if 'bind_port' in self.options.get('DEFAULT', {}):
                    raise
                self._write_conf(free_port())
        raise RuntimeError('no free port for glance-api:\n%s' % self.log())

    def _start(self, timeout):
        log_start = os.path.getsize(self.log_file) if os.path.exists(
            self.log_file) else 0
        with open(self.log_file, 'ab') as log:
            # Its own session, so that a stuck server can be killed with
            # its workers (see stop()).
            self.process = subprocess.Popen(
                [sys.executable, '-m', 'glance.cmd.api',
                 '--config-file', self.conf_file],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log()[log_start:]
                if 'Cannot listen on' in output:
                    raise PortTaken(output)
                raise RuntimeError('glance-api exited %s:\n%s'
                                   % (self.process.returncode, output))
            try:
                requests.get(self.url + '/versions', timeout=1)
            except requests.ConnectionError:
                time.sleep(0.1)
                continue
            self.wait_for_workers(deadline)
            return self
        self.stop()
        raise RuntimeError('glance-api did not answer:\n%s' % self.log())

    @property
    def pid(self):
        return self.process.pid

    def worker_pids(self):
        return child_pids(self.process.pid)

    def expected_workers(self):
        workers = int(self.options.get('DEFAULT', {}).get('workers', 2))
        return max(workers, 1)

    def wait_for_workers(self, deadline):
        """Wait until every worker waits for connections in its loop.

        One worker answering doesn't mean the others have booted, and a
        gunicorn worker that gets SIGTERM between its fork and installing
        its own handlers misses it (the master then waits for
        graceful_shutdown_timeout and kills it): tests that stop the
        server right away would be slow and flaky.
        """
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= self.expected_workers() and all(
                    _waits_in_epoll(pid) for pid in pids):
                return
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signal the server and wait for it; returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Workers that outlived their master: never leave them behind.
        self.kill()
        return self.process.returncode

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()

    def log(self):
        try:
            with open(self.log_file, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''


class PortTaken(RuntimeError):
    pass


def _waits_in_epoll(pid):
    try:
        with open('/proc/%d/wchan' % pid) as f:
            wchan = f.read()
    except OSError:
        return False
    # Some kernels hide wchan ('0'): then there is nothing to wait for.
    return wchan in ('0', '') or 'epoll' in wchan or wchan == 'ep_poll'


@pytest.fixture
def start_glance(tmp_path_factory):
    """Factory: start_glance(options=None, database_url=None) -> server.

    Every server started is stopped when the test ends.
    """
    servers = []

    def start(options=None, database_url=None):
        server = GlanceServer(tmp_path_factory.mktemp('glance'), options,
                              database_url)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope='module')
def glance(tmp_path_factory):
    """A default glance-api (SQLite, filesystem store, no auth)."""
    server = GlanceServer(tmp_path_factory.mktemp('glance')).start()
    yield server
    server.stop()


# Callers of the raw-HTTP API tests (tests.functional.helpers.Api), each on
# the module's ``server`` fixture.

@pytest.fixture
def admin(server):
    """The no-auth default: admin of project ``default``."""
    from tests.functional import helpers
    return helpers.Api(server)


@pytest.fixture
def owner(server):
    """A member/reader of a project of its own."""
    from tests.functional import helpers
    return helpers.Api(server, helpers.new_project())


@pytest.fixture
def other(server):
    """A member/reader of another project."""
    from tests.functional import helpers
    return helpers.Api(server, helpers.new_project())
