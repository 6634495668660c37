"""Fixtures of the cinder_patches tests: the driver in a child process
(``driver_host``) and a look at what is in the Ceph pools."""

import concurrent.futures
import hashlib
import importlib.util
import multiprocessing
import os

import pytest

from tests.cinder import driver_host
from tests.conftest import require

POOLS = ('images', 'volumes')


class Host:
    """Calls ``tests.cinder.driver_host`` functions in a spawned child (a
    fresh interpreter: nothing of glance is imported there)."""

    def __init__(self):
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context('spawn'))

    def __getattr__(self, name):
        function = getattr(driver_host, name)

        def call(*args, **kwargs):
            return self._pool.submit(function, *args, **kwargs).result(
                timeout=600)
        return call

    def close(self):
        # The driver's periodic task and eventlet's thread pool keep the
        # child alive: end it rather than wait.
        for process in list(self._pool._processes.values()):
            process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)


def start_host(ceph, glance_url=None):
    require(importlib.util.find_spec('cinder') is not None,
            'the cinder package is not installed (test-requirements.txt)')
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
