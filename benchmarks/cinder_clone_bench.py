#!/usr/bin/env python3
"""Benchmark of cinder_patches' upload by clone (issue 10; not a test).

Upload-volume-to-image time of the real cinder RBD driver
(``cinder_patches.rbd.RBDCloneDriver`` run as in tests/cinder, in a child
process) into this project's glance-api (multi-store, RBD store by
default), for volumes of ``--sizes`` GiB filled with data, by the stock
copy (``enable_clone_optimization = False``) and by clone, in one run on
one dedicated Ceph cluster (bluestore on a sparse file, free ports,
purged at the end). Also, for the first size: how long the cloned image
stays active without ``os_hash_value`` (Glance hashes it in the
background, ``do_secure_hash``), and the clone path through the legacy
JSON-patch API, where the driver reads the clone to send the hashes.

Prints ONE JSON document on stdout; progress goes to stderr.

    .venv/bin/python benchmarks/cinder_clone_bench.py [--sizes 1,2,3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.cinder.conftest import Host  # noqa: E402
from tests.cinder.conftest import glance_options  # noqa: E402
from tests.conftest import CephCluster  # noqa: E402
from tests.conftest import MICRO_CEPH  # noqa: E402
from tests.functional.conftest import GlanceServer  # noqa: E402
from tests.helpers import free_port  # noqa: E402

import requests  # noqa: E402

GiB = 1024 ** 3
HEADERS = {'X-Roles': 'admin,member,reader', 'X-Project-Id': 'bench',
           'X-User-Id': 'bench'}


def log(message):
    print(message, file=sys.stderr, flush=True)


def start_cluster(directory, osd_bytes):
    env = dict(os.environ, MICRO_CEPH_OBJECTSTORE='bluestore',
               MICRO_CEPH_OSD_BYTES=str(osd_bytes),
               MICRO_CEPH_MON_PORT=str(free_port()),
               MICRO_CEPH_MON_PORT_V1=str(free_port()))
    subprocess.run([MICRO_CEPH, 'start', directory], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return CephCluster(directory)


def start_glance(ceph, directory):
    return GlanceServer(directory, glance_options(ceph, directory)).start()


class Images:
    def __init__(self, server):
        self.url = server.url + '/v2/images'

    def create(self):
        response = requests.post(self.url, headers=HEADERS, json={
            'disk_format': 'raw', 'container_format': 'bare'})
        response.raise_for_status()
        return response.json()['id']

    def show(self, image_id):
        return requests.get('%s/%s' % (self.url, image_id),
                            headers=HEADERS).json()

    def delete(self, image_id):
        requests.delete('%s/%s' % (self.url, image_id), headers=HEADERS)


def timed_upload(host, images, volume_id):
    image_id = images.create()
    seconds = host.upload(volume_id, {
        'id': image_id, 'status': 'queued', 'disk_format': 'raw',
        'container_format': 'bare', 'properties': {}})
    return image_id, seconds


def seconds_without_hash(images, image_id, timeout=600):
    """From now (the upload just returned, image active) until Glance has
    filled in os_hash_value."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if images.show(image_id).get('os_hash_value'):
            return time.monotonic() - began
        time.sleep(0.05)
    return None


def measure_size(host, images, gib, first):
    log('%d GiB: writing the volume' % gib)
    volume_id, sha256 = host.new_volume(gib * GiB)
    result = {}
    host.configure(enable_clone_optimization=False)
    image_id, result['copy_s'] = timed_upload(host, images, volume_id)
    check(images, image_id, gib, 'copy')
    images.delete(image_id)
    log('%d GiB: copy %.2f s' % (gib, result['copy_s']))
    host.configure(enable_clone_optimization=True)
    image_id, result['clone_s'] = timed_upload(host, images, volume_id)
    check(images, image_id, gib, 'clone')
    if first:
        result['clone_active_without_hash_s'] = seconds_without_hash(
            images, image_id)
    images.delete(image_id)
    log('%d GiB: clone %.3f s' % (gib, result['clone_s']))
    if first:
        host.use_legacy_location_api()
        image_id, result['clone_legacy_api_s'] = timed_upload(
            host, images, volume_id)
        check(images, image_id, gib, 'legacy clone')
        result['clone_legacy_api_has_hash'] = bool(
            images.show(image_id).get('os_hash_value'))
        images.delete(image_id)
        host.use_location_api_of_glance()
    host.delete_volume(volume_id)
    host.collect_garbage()
    result['copy_over_clone'] = round(result['copy_s'] / result['clone_s'], 1)
    return result


def check(images, image_id, gib, what):
    image = images.show(image_id)
    if image['status'] != 'active' or image['size'] != gib * GiB:
        raise SystemExit('%s upload of %d GiB: image %s is %s, size %s'
                         % (what, gib, image_id, image['status'],
                            image['size']))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1,2,3',
                        help='volume sizes in GiB (default 1,2,3)')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    directory = tempfile.mkdtemp(prefix='cinder-bench-')
    # Room for the largest volume and its stock copy, plus slack.
    osd_bytes = (2 * max(sizes) + 4) * GiB
    log('starting Ceph (bluestore, %d GiB) in %s' % (osd_bytes // GiB,
                                                     directory))
    ceph = start_cluster(os.path.join(directory, 'ceph'), osd_bytes)
    server = host = None
    try:
        os.mkdir(os.path.join(directory, 'glance'))
        server = start_glance(ceph, os.path.join(directory, 'glance'))
        host = Host()
        host.start(ceph.conf, ceph.keyring, server.url)
        images = Images(server)
        results = {'%d GiB' % gib: measure_size(host, images, gib,
                                                first=(i == 0))
                   for i, gib in enumerate(sizes)}
    finally:
        if host:
            host.close()
        if server:
            server.stop()
        subprocess.run([MICRO_CEPH, 'purge', ceph.directory],
                       capture_output=True)
    clones = [r['clone_s'] for r in results.values()]
    print(json.dumps({
        'benchmark': 'cinder upload volume to image: stock copy vs clone',
        'cluster': 'micro-ceph, 1 OSD bluestore on a sparse file, loopback',
        'results': results,
        'clone_max_s': max(clones),
        'clone_flat_max_over_min': round(max(clones) / min(clones), 2),
    }, indent=2))


if __name__ == '__main__':
    main()
