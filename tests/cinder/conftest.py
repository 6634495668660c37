"""Fixtures of the cinder_patches tests: the driver in a child process
(``Host``, running ``tests.cinder.driver_host`` with the python of
.venv-cinder, where run.sh installs cinder) and a look at what is in the
Ceph pools (``Pools``, with the bindings of this process)."""

import hashlib
import json
import os
import signal
import subprocess

import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import require

POOLS = ('images', 'volumes')
CINDER_PYTHON = os.environ.get(
    'GLANCE_TEST_CINDER_PYTHON',
    os.path.join(REPO_ROOT, '.venv-cinder', 'bin', 'python'))


class HostError(Exception):
    """An exception the driver host raised; ``type`` names its class."""

    def __init__(self, error):
        self.type = error['type']
        super().__init__('%s: %s\n%s' % (error['type'], error['message'],
                                         error['traceback']))


class Host:
    """Calls the public functions of ``tests.cinder.driver_host`` in a
    child process, one JSON line each way (nothing of glance is imported
    there, nor cinder here)."""

    def __init__(self, python=CINDER_PYTHON):
        self.process = subprocess.Popen(
            [python, '-m', 'tests.cinder.driver_host'], cwd=REPO_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            request = {'call': name, 'args': args, 'kwargs': kwargs}
            self.process.stdin.write(json.dumps(request) + '\n')
            self.process.stdin.flush()
            line = self.process.stdout.readline()
            if not line:
                raise HostError({'type': 'EOF', 'traceback': '',
                                 'message': 'the driver host exited (%s)'
                                 % self.process.wait()})
            reply = json.loads(line)
            if 'error' in reply:
                raise HostError(reply['error'])
            return reply['result']
        return call

    def close(self):
        # The driver's periodic task and eventlet's thread pool keep the
        # child alive: end it rather than wait.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def start_host(ceph, glance_url=None):
    require(os.path.exists(CINDER_PYTHON),
            '%s not found: ./run.sh test installs cinder there '
            '(cinder-requirements.txt)' % CINDER_PYTHON)
    host = Host()
    try:
        host.fsid = host.start(ceph.conf, ceph.keyring, glance_url)
    except Exception:
        host.close()
        raise
    return host


def glance_options(ceph, base_dir):
    """glance-api multi-store: RBD store ``ceph`` (the default) on the
    cluster, file store ``file1``. The JSON-patch location API (Glance
    without v2.17) needs the locations shown, as upstream."""
    return {
        'DEFAULT': {'enabled_backends': 'ceph:rbd,file1:file',
                    'show_multiple_locations': True},
        'glance_store': {'default_backend': 'ceph'},
        'ceph': {'rbd_store_ceph_conf': ceph.conf, 'rbd_store_user': 'admin',
                 'rbd_store_pool': 'images'},
        'file1': {'filesystem_store_datadir': os.path.join(base_dir, 'f1')},
    }


class Pools:
    """What the cluster holds, read with the rados/rbd bindings here."""

    def __init__(self, ceph):
        import rados
        import rbd

        self.rbd = rbd
        self.cluster = rados.Rados(conffile=ceph.conf)
        self.cluster.connect()

    def close(self):
        self.cluster.shutdown()

    def snaps(self, pool, name):
        """The image's snapshot names, None if there is no such image."""
        with self.cluster.open_ioctx(pool) as ioctx:
            try:
                with self.rbd.Image(ioctx, name, read_only=True) as image:
                    return sorted(s['name'] for s in image.list_snaps())
            except self.rbd.ImageNotFound:
                return None

    def parent(self, pool, name):
        with self.cluster.open_ioctx(pool) as ioctx:
            with self.rbd.Image(ioctx, name, read_only=True) as image:
                try:
                    return tuple(image.parent_info())
                except self.rbd.ImageNotFound:
                    return None

    def sha256(self, pool, name, snap=None, length=None):
        """Of the image's data, or of its first ``length`` bytes."""
        digest = hashlib.sha256()
        with self.cluster.open_ioctx(pool) as ioctx:
            with self.rbd.Image(ioctx, name, snapshot=snap,
                                read_only=True) as image:
                size = length or image.size()
                for offset in range(0, size, 4 << 20):
                    digest.update(image.read(offset,
                                             min(4 << 20, size - offset)))
        return digest.hexdigest()

    def leftovers(self, *words):
        """Images (with their snapshots) and trash entries, in both pools,
        whose names contain any of ``words``."""
        found = []
        for pool in POOLS:
            with self.cluster.open_ioctx(pool) as ioctx:
                names = self.rbd.RBD().list(ioctx)
                trash = [t['name'] for t in self.rbd.RBD().trash_list(ioctx)]
            for name in names:
                if any(w in name for w in words):
                    found.append((pool, name, self.snaps(pool, name)))
            found += [(pool, 'trash:' + name, None) for name in trash
                      if any(w in name for w in words)]
        return found


@pytest.fixture(scope='module')
def pools(ceph):
    view = Pools(ceph)
    yield view
    view.close()
