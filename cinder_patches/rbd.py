"""Cinder's RBD driver with "upload volume to image" by copy-on-write clone.

Select it per backend in cinder.conf::

    [ceph]
    volume_driver = cinder_patches.rbd.RBDCloneDriver
    enable_clone_optimization = True

With ``enable_clone_optimization`` on, ``copy_volume_to_image`` asks Glance
for its stores (``/v2/info/stores/detail``) and, when the image's store
(the volume type's ``image_service:store_id``, else Glance's default) is
RBD on this Ceph cluster and the image is raw/bare, clones the volume into
Glance's pool instead of streaming it:

1. snapshot and protect ``<rbd_pool>/volume-<id>@<image id>.clone_snap``;
2. clone it as ``<glance pool>/<image id>``;
3. snapshot and protect ``<glance pool>/<image id>@snap`` (what Glance's
   RBD store reads, clones from and deletes);
4. register ``rbd://<fsid>/<glance pool>/<image id>/snap`` as the image's
   location and wait until Glance makes the image active.

Any mismatch means the stock upload. A failure before the image is active
removes what steps 1-3 made (the names belong to this image alone) and
falls back to the stock upload, so the image never ends active without
data nor with a location whose data is gone.

Dependencies (the image's data is the volume's snapshot): the source
snapshot is named ``<image id>.clone_snap``, so the stock delete_volume
renames a source volume with live images to ``volume-<id>.deleted`` at
once instead of flattening the images into Glance's pool; Glance refuses
(409) to delete an image while volumes were cloned from it. What nobody
else removes - childless ``<image id>.clone_snap`` snapshots and
``*.deleted`` volumes left without snapshots - is collected by this driver
when a volume is deleted and by a periodic task. See README.rst.
"""

import hashlib
import time

from cinder import exception
from cinder.volume import configuration
from cinder.volume.drivers import rbd as cinder_rbd
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import uuidutils

from cinder_patches import glance

LOG = logging.getLogger(__name__)

CLONE_OPTS = [
    cfg.BoolOpt('enable_clone_optimization', default=False,
                help='Upload a volume to an image by copy-on-write cloning '
                     'it into the Glance RBD pool, when the image goes to '
                     'an RBD store of the same Ceph cluster and is '
                     'raw/bare. Security: Glance then writes no data, so '
                     'it does not compute the checksum and os_hash_value '
                     'while uploading. With Glance\'s location API (v2.17) '
                     'and do_secure_hash on, Glance computes them in the '
                     'background after the image is active: until then '
                     'clients cannot verify the data. With the older '
                     'JSON-patch API this driver reads the clone and '
                     'sends the hashes with the location, which takes as '
                     'long as reading the volume. The Cinder Ceph user '
                     'needs write access to the Glance pool.'),
]
cfg.CONF.register_opts(CLONE_OPTS, group=configuration.SHARED_CONF_GROUP)

SOURCE_SNAP_SUFFIX = '.clone_snap'
GLANCE_SNAP = 'snap'  # the snapshot name glance_store's RBD driver uses
DELETED_SUFFIX = '.deleted'  # stock delete_volume's name for kept volumes
HASH_ALGORITHM = 'sha512'  # Glance's default hashing_algorithm
READ_CHUNK = 8 * 1024 * 1024


class RBDCloneDriver(cinder_rbd.RBDDriver):
    """RBDDriver whose uploads to Glance RBD stores are COW clones."""

    # How long Glance may take to make an image active after a POSTed
    # location (it checks the location in the background).
    LOCATION_TIMEOUT = 300

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(CLONE_OPTS)
        self.glance = glance.GlanceLocations()

    @classmethod
    def get_driver_options(cls):
        return super().get_driver_options() + CLONE_OPTS

    # --- upload ---------------------------------------------------------

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        if not self._upload_by_clone(context, volume, image_service,
                                     image_meta):
            super().copy_volume_to_image(context, volume, image_service,
                                         image_meta)

    def _upload_by_clone(self, context, volume, image_service, image_meta):
        """True when the image is active with the clone as its data."""
        if not self.configuration.enable_clone_optimization:
            return False
        # One connection for the checks and the source snapshot: each
        # connect costs tens of milliseconds of a sub-second upload.
        with cinder_rbd.RADOSClient(self) as source:
            fsid = source.cluster.get_fsid()
            pool = self._clone_target_pool(context, volume, image_meta, fsid)
            if pool is None:
                return False
            clone = ImageClone(self, volume.name, fsid, pool,
                               image_meta['id'])
            try:
                with _open(self, source, volume.name) as image:
                    self._release_unused_snaps_of(image)
                clone.create(source)
            except Exception:
                LOG.exception('Cloning volume %s into pool %s failed; '
                              'uploading it by copy instead.', volume.id,
                              pool)
                clone.remove()
                return False
        return self._register(context, image_service, clone)

    def _clone_target_pool(self, context, volume, image_meta, fsid):
        """Glance's pool for the image when a clone can be its data."""
        if (image_meta.get('disk_format') != 'raw'
                or image_meta.get('container_format') != 'bare'):
            return None
        try:
            stores = self.glance.stores(context)
        except Exception as e:
            LOG.info('Glance stores detail unavailable (%s): uploading '
                     'volume %s by copy.', e, volume.id)
            return None
        store = _target_store(stores, _store_id(volume))
        if store is None or store.get('type') != 'rbd':
            return None
        properties = store.get('properties')
        if not isinstance(properties, dict):
            return None
        if properties.get('fsid') != fsid:
            LOG.info('Glance store %s is on another Ceph cluster: uploading '
                     'volume %s by copy.', store.get('id'), volume.id)
            return None
        return properties.get('pool') or None

    def _register(self, context, image_service, clone):
        image_id = clone.image_id
        try:
            self.glance.add_location(context, image_id, clone.url,
                                     clone.validation_data)
        except Exception:
            LOG.exception('Glance refused location %s for image %s.',
                          clone.url, image_id)
        status = self._wait_for_image(context, image_service, image_id)
        if status == 'active':
            return True
        if status == 'queued':
            # Glance recorded nothing: the clone is ours to drop.
            clone.remove()
            return False
        raise self._give_up(context, image_service, clone, status)

    def _wait_for_image(self, context, image_service, image_id):
        """The image's status once Glance is done with the location:
        ``active``, ``queued`` (refused or put back), ``deleted`` (by
        someone else meanwhile), ``killed``, or the status it still had at
        the timeout."""
        started = time.monotonic()
        status = None
        while True:
            try:
                status = image_service.show(context, image_id)['status']
            except exception.ImageNotFound:
                return 'deleted'
            except Exception as e:
                LOG.warning('Reading image %s failed: %s', image_id, e)
            if status in ('active', 'queued', 'killed'):
                return status
            waited = time.monotonic() - started
            if waited > self.LOCATION_TIMEOUT:
                return status
            # Glance usually takes a fraction of a second: poll often at
            # first, then gently.
            time.sleep(0.05 if waited < 10 else 1)

    def _give_up(self, context, image_service, clone, status):
        """The image won't become active: delete it (so that it can't on
        data we remove) and remove the clone. Returns the error for the
        volume manager, which marks the upload failed."""
        LOG.error('Image %s is %s, not active, after its location was '
                  'added; deleting it.', clone.image_id, status)
        try:
            image_service.delete(context, clone.image_id)
        except exception.ImageNotFound:
            pass
        except Exception:
            LOG.exception('Deleting image %s failed; its clone is kept.',
                          clone.image_id)
            return self._upload_failure(clone, status)
        clone.remove()
        return self._upload_failure(clone, status)

    def _upload_failure(self, clone, status):
        return exception.ImageCopyFailure(
            reason='Glance did not activate image %s (status %s, waited at '
                   'most %ss)' % (clone.image_id, status,
                                  self.LOCATION_TIMEOUT))

    # --- dependencies ---------------------------------------------------

    def delete_volume(self, volume):
        super().delete_volume(volume)
        # Kept as .deleted while images depend on it: maybe none do.
        with cinder_rbd.RADOSClient(self) as client:
            self._collect_deleted(client, volume.name + DELETED_SUFFIX)

    def _start_periodic_tasks(self):
        super()._start_periodic_tasks()
        if self.configuration.enable_clone_optimization:
            # Glance deletes images without telling Cinder.
            task = loopingcall.FixedIntervalLoopingCall(self.collect_garbage)
            task.start(
                interval=self.configuration.deferred_deletion_purge_interval)

    def collect_garbage(self):
        """Drop the upload snapshots of deleted volumes that no image uses
        any more, and the deleted volumes that are then left empty."""
        with cinder_rbd.RADOSClient(self) as client:
            for name in self.RBDProxy().list(client.ioctx):
                if name.endswith(DELETED_SUFFIX):
                    self._collect_deleted(client, name)

    def _collect_deleted(self, client, name):
        """Collect one deleted volume; a failure is logged, not raised: the
        volume is deleted for Cinder, and the periodic task must go on."""
        try:
            self._try_collect_deleted(client, name)
        except Exception:
            LOG.exception('Collecting %s failed; the next collection '
                          'tries again.', name)

    def _try_collect_deleted(self, client, name):
        try:
            with _open(self, client, name) as image:
                self._release_unused_snaps_of(image)
                if list(image.list_snaps()):
                    return
                _pool, parent, parent_snap = self._get_clone_info(image,
                                                                  name)
        except self.rbd.ImageNotFound:
            return
        LOG.info('Removing %s: no image depends on it any more.', name)
        if self.configuration.enable_deferred_deletion:
            self.RBDProxy().trash_move(
                client.ioctx, name,
                self.configuration.deferred_deletion_delay)
        else:
            self.RBDProxy().remove(client.ioctx, name)
        if parent:
            # The stock driver's walk up a chain of Cinder clones.
            self._delete_clone_parent_refs(client, parent, parent_snap)

    def _release_unused_snaps_of(self, image):
        """Remove this driver's upload snapshots that have no clone left
        (their image was deleted)."""
        for snap in list(image.list_snaps()):
            if not _is_upload_snap(snap['name']):
                continue
            try:
                image.unprotect_snap(snap['name'])
            except self.rbd.ImageBusy:
                continue  # an image still uses it
            except self.rbd.InvalidArgument:
                pass  # not protected
            image.remove_snap(snap['name'])


class ImageClone:
    """The RBD objects that make one image's data out of one volume."""

    def __init__(self, driver, volume_name, fsid, pool, image_id):
        self.driver = driver
        self.rbd = driver.rbd
        self.volume_name = volume_name
        self.fsid = fsid
        self.pool = pool
        self.image_id = image_id
        self.source_snap = image_id + SOURCE_SNAP_SUFFIX

    @property
    def url(self):
        return 'rbd://%s/%s/%s/%s' % (self.fsid, self.pool, self.image_id,
                                      GLANCE_SNAP)

    def create(self, source):
        """Steps 1-3, ``source`` being a RADOSClient of the volumes' pool."""
        with cinder_rbd.RADOSClient(self.driver, self.pool) as target:
            self._protected_snap(source, self.volume_name, self.source_snap)
            self.driver.RBDProxy().clone(
                source.ioctx, self.volume_name, self.source_snap,
                target.ioctx, self.image_id, features=source.features)
            self._protected_snap(target, self.image_id, GLANCE_SNAP)

    def _protected_snap(self, client, name, snap):
        with _open(self.driver, client, name) as image:
            image.create_snap(snap)
            image.protect_snap(snap)

    def remove(self):
        """Undo create(), from its last step back; whatever exists of it."""
        steps = [
            (self.pool, self.image_id, self._drop_snap, GLANCE_SNAP),
            (self.pool, self.image_id, self._drop_image, None),
            (None, self.volume_name, self._drop_snap, self.source_snap),
        ]
        for pool, name, step, snap in steps:
            try:
                with cinder_rbd.RADOSClient(self.driver, pool) as client:
                    step(client, name, snap)
            except Exception:
                LOG.exception('Undoing the clone of image %s: %s in pool %s '
                              'stays.', self.image_id, snap or name,
                              pool or self.driver.configuration.rbd_pool)

    def _drop_snap(self, client, name, snap):
        try:
            with _open(self.driver, client, name) as image:
                if snap not in {s['name'] for s in image.list_snaps()}:
                    return
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)
        except self.rbd.ImageNotFound:
            pass

    def _drop_image(self, client, name, _snap):
        try:
            self.driver.RBDProxy().remove(client.ioctx, name)
        except self.rbd.ImageNotFound:
            pass

    def validation_data(self):
        """checksum and os_hash_value of the clone's data, read back."""
        md5, digest = hashlib.md5(usedforsecurity=False), hashlib.new(
            HASH_ALGORITHM)
        with cinder_rbd.RBDVolumeProxy(self.driver, self.image_id,
                                       pool=self.pool, snapshot=GLANCE_SNAP,
                                       read_only=True) as image:
            size = image.size()
            for offset in range(0, size, READ_CHUNK):
                chunk = image.read(offset, min(READ_CHUNK, size - offset))
                md5.update(chunk)
                digest.update(chunk)
        return {'checksum': md5.hexdigest(), 'os_hash_algo': HASH_ALGORITHM,
                'os_hash_value': digest.hexdigest()}


def _open(driver, client, name):
    """The RBD image ``name`` in the pool of ``client`` (a RADOSClient)."""
    return cinder_rbd.RBDVolumeProxy(driver, name, client=client.cluster,
                                     ioctx=client.ioctx)


def _store_id(volume):
    volume_type = volume.volume_type
    if volume_type is None:
        return None
    return (volume_type.extra_specs or {}).get('image_service:store_id')


def _target_store(stores, store_id):
    """The store the image goes to: the volume type's, else the default."""
    if not isinstance(stores, list):
        return None
    for store in filter(lambda entry: isinstance(entry, dict), stores):
        if store_id is not None and store.get('id') == store_id:
            return store
        if store_id is None and str(store.get('default')).lower() == 'true':
            return store
    return None


def _is_upload_snap(name):
    return (name.endswith(SOURCE_SNAP_SUFFIX)
            and uuidutils.is_uuid_like(name[:-len(SOURCE_SNAP_SUFFIX)]))
