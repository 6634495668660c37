"""cinder_patches.rbd.RBDCloneDriver: the real cinder 29 driver code on a
real Ceph cluster, with an in-memory Glance (``FakeGlance``) that reports
the statuses Glance would. What the tests check is in the pools: the
clone and its snapshots, the bytes they hold, what is left after a
failure or a fallback. End to end with glance-api: test_rbd_clone_e2e.py.
"""

import hashlib
import uuid

import pytest

from tests.cinder import conftest as cinder_conftest
from tests.cinder.driver_host import _pattern

SIZE = 8 * 1024 * 1024


@pytest.fixture(scope='module')
def host(ceph):
    host = cinder_conftest.start_host(ceph)
    yield host
    host.close()


@pytest.fixture(autouse=True)
def defaults(host):
    host.configure()
    host.fail_at(None)
    host.set_location_timeout(300)


def rbd_stores(fsid, default='ceph'):
    """Glance's stores detail: RBD store ``ceph`` on the given cluster and
    a file store ``file1``; ``default`` names the default one."""
    stores = [
        {'id': 'ceph', 'type': 'rbd', 'weight': 0,
         'properties': {'pool': 'images', 'fsid': fsid, 'chunk_size': 8}},
        {'id': 'file1', 'type': 'file', 'weight': 0,
         'properties': {'data_dir': '/srv/images'}},
    ]
    for store in stores:
        if store['id'] == default:
            store['default'] = 'true'
    return stores


def upload(host, volume_id, disk_format='raw', container_format='bare'):
    image_id = str(uuid.uuid4())
    host.upload(volume_id, {'id': image_id, 'status': 'queued',
                            'disk_format': disk_format,
                            'container_format': container_format,
                            'properties': {}})
    return image_id


def assert_cloned(host, pools, volume_id, sha256, image_id):
    image = host.fake_glance_image(image_id)
    assert image['status'] == 'active'
    assert 'copied' not in image
    assert image['location'] == 'rbd://%s/images/%s/snap' % (host.fsid,
                                                             image_id)
    name = host.volume_name(volume_id)
    assert pools.snaps('volumes', name) == [image_id + '.clone_snap']
    assert pools.snaps('images', image_id) == ['snap']
    assert pools.parent('images', image_id) == (
        'volumes', name, image_id + '.clone_snap')
    assert pools.sha256('images', image_id, 'snap') == sha256


def assert_copied(host, pools, volume_id, sha256, image_id):
    """The stock upload ran and nothing of a clone is left."""
    image = host.fake_glance_image(image_id)
    assert image['status'] == 'active'
    assert image['copied'] and image['sha256'] == sha256
    assert 'location' not in image
    assert pools.snaps('volumes', host.volume_name(volume_id)) == []
    assert pools.leftovers(image_id) == []


def test_upload_clones_into_glance_pool(host, pools):
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, sha256 = host.new_volume()
    image_id = upload(host, volume_id)
    assert_cloned(host, pools, volume_id, sha256, image_id)


def test_volume_type_store_id_picks_the_store(host, pools):
    host.use_fake_glance(rbd_stores(host.fsid, default='file1'))
    volume_id, sha256 = host.new_volume(store_id='ceph')
    assert_cloned(host, pools, volume_id, sha256, upload(host, volume_id))
    other_id, other_sha = host.new_volume(store_id='file1')
    image_id = upload(host, other_id)
    assert_copied(host, pools, other_id, other_sha, image_id)
    assert host.fake_glance_image(image_id)['store_id'] == 'file1'


def test_option_registered_like_rbd_options(host):
    facts = host.option_facts()
    assert facts['listed'] == 1 and facts['rbd_options_listed']
    assert facts['shared_default'] is False
    assert facts['backend_value'] is True  # set for the backend group
    assert 'checksum' in facts['help'] and 'os_hash_value' in facts['help']


@pytest.mark.parametrize('case', [
    'option off', 'default store is file', 'other ceph cluster',
    'stores lookup fails', 'container ovf', 'store without pool',
    'malformed stores', 'no default store'])
def test_mismatch_uploads_by_copy(host, pools, case):
    stores = rbd_stores(host.fsid)
    container = 'bare'
    behaviour = {}
    if case == 'option off':
        host.configure(enable_clone_optimization=False)
        behaviour['stores_error'] = True  # never asked
    elif case == 'default store is file':
        stores = rbd_stores(host.fsid, default='file1')
    elif case == 'other ceph cluster':
        stores[0]['properties']['fsid'] = str(uuid.uuid4())
    elif case == 'stores lookup fails':
        behaviour['stores_error'] = True
    elif case == 'container ovf':
        container = 'ovf'
    elif case == 'store without pool':
        del stores[0]['properties']['pool']
    elif case == 'malformed stores':
        stores = [{'id': 'ceph', 'default': 'true', 'type': 'rbd',
                   'properties': 'pool=images'}, 'file1', None]
    elif case == 'no default store':
        del stores[0]['default']
    host.use_fake_glance(stores, **behaviour)
    volume_id, sha256 = host.new_volume()
    image_id = upload(host, volume_id, container_format=container)
    assert_copied(host, pools, volume_id, sha256, image_id)


def test_qcow2_is_never_cloned(host, pools):
    """qcow2 goes the stock way (rbd export, then qemu-img convert through
    privsep): it converts, or fails as stock Cinder fails on a host
    without those tools; never a clone."""
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, _sha256 = host.new_volume()
    image_id = str(uuid.uuid4())
    try:
        host.upload(volume_id, {'id': image_id, 'disk_format': 'qcow2',
                                'container_format': 'bare',
                                'properties': {}, 'status': 'queued'})
    except cinder_conftest.HostError as e:
        assert e.type.split('.')[0] in (
            'oslo_privsep', 'oslo_concurrency', 'cinder'), e
    else:
        assert host.fake_glance_image(image_id)['copied']
    assert 'location' not in (host.fake_glance_image(image_id) or {})
    assert pools.snaps('volumes', host.volume_name(volume_id)) == []
    assert pools.leftovers(image_id) == []


@pytest.mark.parametrize('failure', [
    'create_snap', 'protect_snap', 'clone', 'create_snap:snap',
    'protect_snap:snap', 'glance refuses', 'glance reverts'])
def test_failure_undoes_clone_and_copies(host, pools, failure):
    behaviour = {}
    if failure == 'glance refuses':
        behaviour['refuse'] = True
    elif failure == 'glance reverts':
        behaviour['revert'] = True
    else:
        host.fail_at(failure)
    host.use_fake_glance(rbd_stores(host.fsid), **behaviour)
    volume_id, sha256 = host.new_volume()
    image_id = upload(host, volume_id)
    host.fail_at(None)
    assert_copied(host, pools, volume_id, sha256, image_id)


@pytest.mark.parametrize('behaviour', ['stuck', 'vanish'])
def test_image_never_active_fails_without_leftovers(host, pools, behaviour):
    """Glance keeps the image importing past the timeout (the driver
    deletes it), or someone deletes it meanwhile: the upload fails and
    the clone goes."""
    host.use_fake_glance(rbd_stores(host.fsid), **{behaviour: True})
    host.set_location_timeout(0.5)
    volume_id, _sha256 = host.new_volume()
    image_id = str(uuid.uuid4())
    with pytest.raises(cinder_conftest.HostError,
                       match='did not activate image'):
        host.upload(volume_id, {'id': image_id, 'disk_format': 'raw',
                                'container_format': 'bare',
                                'properties': {}, 'status': 'queued'})
    assert host.fake_glance_image(image_id)['status'] == 'deleted'
    assert pools.snaps('volumes', host.volume_name(volume_id)) == []
    assert pools.leftovers(image_id) == []


def test_legacy_location_api_sends_hashes(host, pools):
    host.use_fake_glance(rbd_stores(host.fsid), api='legacy')
    seed = uuid.uuid4().hex
    volume_id, sha256 = host.new_volume(seed=seed)
    image_id = upload(host, volume_id)
    assert_cloned(host, pools, volume_id, sha256, image_id)
    data = _pattern(SIZE, seed)
    image = host.fake_glance_image(image_id)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['os_hash_algo'] == 'sha512'
    assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()


def test_stale_upload_snapshot_is_released_on_next_upload(host, pools):
    """An image Glance deleted leaves a childless snapshot on the live
    volume: the volume's next upload drops it."""
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, sha256 = host.new_volume()
    first = upload(host, volume_id)
    glance_store_delete(pools, first)
    second = upload(host, volume_id)
    assert_cloned(host, pools, volume_id, sha256, second)
    assert pools.leftovers(first) == []


def test_deleting_volume_keeps_image_data_until_image_goes(host, pools):
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, sha256 = host.new_volume()
    name = host.volume_name(volume_id)
    image_id = upload(host, volume_id)
    host.delete_volume(volume_id)
    # Renamed, not flattened into Glance's pool: the image is still COW.
    assert pools.snaps('volumes', name + '.deleted') == [
        image_id + '.clone_snap']
    assert pools.parent('images', image_id)[1] == name + '.deleted'
    assert pools.sha256('images', image_id, 'snap') == sha256
    host.collect_garbage()
    assert pools.snaps('volumes', name + '.deleted') is not None
    glance_store_delete(pools, image_id)
    host.collect_garbage()
    assert pools.leftovers(volume_id, image_id) == []


def test_deleting_volume_after_image_leaves_nothing(host, pools):
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, _sha256 = host.new_volume()
    image_id = upload(host, volume_id)
    glance_store_delete(pools, image_id)
    host.delete_volume(volume_id)
    assert pools.leftovers(volume_id, image_id) == []


def test_periodic_task_collects_after_glance_deletes(host, pools):
    """Glance deletes the image without telling Cinder: the periodic task
    removes the deleted source volume and its snapshot."""
    host.use_fake_glance(rbd_stores(host.fsid))
    volume_id, _sha256 = host.new_volume()
    image_id = upload(host, volume_id)
    host.delete_volume(volume_id)
    glance_store_delete(pools, image_id)
    assert pools.leftovers(volume_id) != []
    host.run_periodic_tasks(seconds=3, interval=1)
    assert pools.leftovers(volume_id, image_id) == []


def glance_store_delete(pools, image_id):
    """Delete the image's data as glance_store's RBD driver does."""
    with pools.cluster.open_ioctx('images') as ioctx:
        with pools.rbd.Image(ioctx, image_id) as image:
            image.unprotect_snap('snap')
            image.remove_snap('snap')
        pools.rbd.RBD().remove(ioctx, image_id)
