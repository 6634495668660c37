"""The real glance-api process, started per test module on a free port."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import REPO_ROOT

PASTE_INI = os.path.join(REPO_ROOT, 'etc', 'glance-api-paste.ini')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_command(module, conf_file, *args, timeout=120):
    """Run ``python -m glance.cmd.<module> --config-file conf_file args``."""
    return subprocess.run(
        [sys.executable, '-m', 'glance.cmd.%s' % module,
         '--config-file', conf_file, *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def write_conf(path, sections):
    with open(path, 'w') as f:
        for section, options in sections.items():
            f.write('[%s]\n' % section)
            for key, value in options.items():
                f.write('%s = %s\n' % (key, value))


class GlanceServer:
    """A glance-api process with its own config, database and image dir.

    ``options`` is ``{section: {key: value}}`` laid over the defaults.
    """

    def __init__(self, base_dir, options=None, database_url=None):
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.images_dir = os.path.join(self.base_dir, 'images')
        self.conf_file = os.path.join(self.base_dir, 'glance-api.conf')
        self.log_file = os.path.join(self.base_dir, 'glance-api.log')
        self.database_url = database_url or 'sqlite:///%s' % os.path.join(
            self.base_dir, 'glance.sqlite')
        sections = {
            'DEFAULT': {'bind_host': '127.0.0.1', 'bind_port': self.port,
                        'workers': 2},
            'database': {'connection': self.database_url},
            'glance_store': {'filesystem_store_datadir': self.images_dir},
            'paste_deploy': {'config_file': PASTE_INI},
        }
        for section, values in (options or {}).items():
            sections.setdefault(section, {}).update(values)
        write_conf(self.conf_file, sections)
        self.process = None

    def manage(self, *args):
        return run_command('manage', self.conf_file, *args)

    def start(self, timeout=60):
        synced = self.manage('db', 'sync')
        assert synced.returncode == 0, synced.stderr
        log = open(self.log_file, 'ab')
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'glance.cmd.api',
             '--config-file', self.conf_file],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('glance-api exited %s:\n%s'
                                   % (self.process.returncode, self.log()))
            try:
                requests.get(self.url + '/versions', timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError('glance-api did not answer:\n%s' % self.log())

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def log(self):
        with open(self.log_file, errors='replace') as f:
            return f.read()


@pytest.fixture
def start_glance(tmp_path_factory):
    """Factory: start_glance(options=None, database_url=None) -> server."""
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
