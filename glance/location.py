"""The store layer: image data in and out of the stores (``glance.stores``).

Uploads stream through glance_store, which hashes while it writes (md5
``checksum`` and ``os_hash_value``); the size cap and the owner's storage
quota are enforced on the stream itself, so nothing is buffered. Deleting an
image deletes its data, or leaves it for the scrubber with
``delayed_delete``.
"""

import hashlib
import queue
import threading
import time

from glance_store import exceptions as store_exc
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils.imageutils import format_inspector

from glance.common import exception
from glance.db import api as db_api
from glance import quota
from glance import stores

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


class Gone(exception.GlanceError):
    message = 'Image %(image_id)s was deleted during the upload.'


class StoreUnavailable(exception.GlanceError):
    message = 'The image store is unavailable: %(reason)s'


class _CappedReader:
    """A request body that refuses to yield more than ``limit`` bytes."""

    def __init__(self, body, limit, too_big):
        self.body = body
        self.remaining = limit
        self.too_big = too_big
        self.bytes_read = 0

    def read(self, size=-1):
        try:
            chunk = self.body.read(size)
        except Exception as e:
            # The client went away or sent a broken stream.
            raise exception.Invalid('The image data could not be read from '
                                    'the request: %s' % e)
        self.bytes_read += len(chunk)
        if self.remaining is not None and self.bytes_read > self.remaining:
            raise self.too_big()
        return chunk


class _ReadAhead:
    """Receives the request body (through the format inspectors) a block
    at a time in a thread of its own, a few blocks ahead of the store
    driver, and hands the bytes out in the sizes the driver asks for.

    The driver's work, hashing md5 and os_hash and writing, releases the
    GIL, so receiving and inspecting the next block overlaps it instead of
    adding to it. Blocks, not the 64 KiB the filesystem driver asks for,
    because every read through the WSGI server's body parser and the
    inspectors has a fixed Python cost. A driver that asks for more than a
    block (RBD: 8 MiB) gets blocks of its own size."""

    BLOCK_BYTES = 1024 * 1024
    # Bytes queued ahead of the driver, whatever the block size.
    AHEAD_BYTES = 4 * 1024 * 1024

    def __init__(self, source):
        self.source = source
        self.block = b''
        self.offset = 0
        self._blocks = None
        self._thread = None
        self._last = None  # the end, or the error that ended it
        self._stopping = threading.Event()

    def _start(self, block_bytes):
        self._blocks = queue.Queue(max(1, self.AHEAD_BYTES // block_bytes))
        self._thread = threading.Thread(target=self._receive,
                                        args=(block_bytes,),
                                        name='upload-read-ahead', daemon=True)
        self._thread.start()

    def _receive(self, block_bytes):
        try:
            while not self._stopping.is_set():
                block = self.source.read(block_bytes)
                self._blocks.put(block)
                if not block:
                    return
        except Exception as e:
            # Raised again in the driver's thread, where it belongs.
            self._blocks.put(e)

    def read(self, size=-1):
        if self._thread is None:
            self._start(max(size or 0, self.BLOCK_BYTES))
        if self.offset == len(self.block):
            self.block, self.offset = self._next_block(), 0
        end = None if size is None or size < 0 else self.offset + size
        # A slice of the whole block is the block itself: no copy.
        chunk = self.block[self.offset:end]
        self.offset += len(chunk)
        return chunk

    def _next_block(self):
        if self._last is None:
            self._last = self._blocks.get()
        block = self._last
        if isinstance(block, Exception):
            raise block  # and again on any later read
        if block:
            self._last = None
        return block  # b'' at the end, from then on

    def close(self):
        """Stop receiving (the driver may have given up early) and wait
        for the thread, so nothing reads the request after the response."""
        if self._thread is None:
            return
        self._stopping.set()
        while self._thread.is_alive():
            try:  # make room for a block the thread is waiting to queue
                self._blocks.get(timeout=0.05)
            except queue.Empty:
                pass


def _upload_limit(image):
    """Bytes this upload may write, and the error for going beyond."""
    limit, error = CONF.image_size_cap, exception.LimitExceeded(
        'Image exceeds the storage quota: the size cap is %d bytes.'
        % CONF.image_size_cap)
    if image.owner is not None:
        room = quota.storage_room(db_api.storage_used(image.owner))
        if room is not None and room < limit:
            limit, error = room, exception.LimitExceeded(
                'Denying attempt to upload image because it exceeds the '
                'quota: %d bytes remaining.' % room)
    return limit, error


# Detected formats accepted for a declared disk_format besides its own.
COMPATIBLE_FORMATS = {'raw': {'gpt'}}


def _format_inspector(image, reader):
    """A reader that also detects the data's format, when the image's
    disk_format is one we can recognise and the check is required."""
    if not (CONF.image_format.require_image_format_match
            and format_inspector.get_inspector(image.disk_format)):
        return None
    return format_inspector.InspectWrapper(reader)


def _check_format(image, inspector):
    """Refuse data whose content is not the declared disk_format; note its
    virtual size."""
    inspector.close()
    try:
        detected = inspector.format
        detected.safety_check()
    except (format_inspector.ImageFormatError,
            format_inspector.SafetyCheckFailed) as e:
        raise exception.UnsupportedData(
            'Image data is not a safe %s image: %s' % (image.disk_format, e))
    name = str(detected)
    if name != image.disk_format and name not in COMPATIBLE_FORMATS.get(
            image.disk_format, ()):
        raise exception.UnsupportedData(
            'Image content does not match disk_format %s (it looks like %s).'
            % (image.disk_format, name))
    if name != 'raw':
        image.virtual_size = detected.virtual_size


def write_data(context, image, body, size, store_id=None):
    """Stream ``body`` into a store (``store_id``, or the default one); on
    success the image carries its new size, checksums and location (not yet
    saved)."""
    limit, error = _upload_limit(image)
    if size is not None and size > limit:
        raise error
    reader = _CappedReader(body, limit, lambda: error)
    inspector = _format_inspector(image, reader)
    algo = CONF.hashing_algorithm
    data = _ReadAhead(inspector or reader)
    try:
        url, written, checksum, multihash, metadata = stores.add(
            context, image.image_id, data, size or 0, algo, store_id)
    except store_exc.Duplicate:
        raise exception.Conflict('Image data already exists in the store.')
    except store_exc.StorageFull as e:
        raise exception.LimitExceeded('Image storage media is full: %s' % e)
    except (store_exc.StorageWriteDenied, store_exc.StoreAddDisabled) as e:
        raise StoreUnavailable(reason=e)
    finally:
        data.close()
    if inspector is not None:
        try:
            _check_format(image, inspector)
        except exception.UnsupportedData:
            delete_data(context, {'url': url, 'metadata': metadata})
            raise
    image.size = written
    image.checksum = checksum
    image.os_hash_algo = algo
    image.os_hash_value = multihash
    image.locations.append({'id': None, 'url': url, 'metadata': metadata,
                            'status': 'active'})


def delete_data(context, loc):
    """Delete one location's data. Data already gone, or in a read-only
    store (an http URL: not ours to delete), counts as deleted."""
    url = loc['url']
    try:
        stores.delete(context, url, loc['metadata'])
    except store_exc.NotFound:
        LOG.info('Data at a location of a deleted image was already gone.')
    except store_exc.StoreDeleteNotSupported:
        LOG.info('Location %s is in a read-only store; only its record is '
                 'deleted.', url)
    except (store_exc.InUseByStore, store_exc.HasSnapshot) as e:
        raise exception.Conflict('Image data is in use: %s' % e)


READ_ERRORS = (store_exc.NotFound, store_exc.UnknownScheme,
               store_exc.BackendException)


def data_exists(loc, context=None):
    """Whether a store still holds a location's data (True when the store
    can't tell)."""
    try:
        stores.size(context, loc['url'], loc['metadata'])
    except store_exc.NotFound:
        return False
    except store_exc.GlanceStoreException as e:
        LOG.warning('Cannot check the data at %s: %s', loc['url'], e)
    return True


def read_data(context, image, offset=0, length=None):
    """An iterator over the image's data (from its first readable
    location) and the number of bytes it will yield."""
    errors = []
    for location in image.active_locations:
        try:
            return stores.get(context, location['url'],
                              location['metadata'], offset, length)
        except READ_ERRORS as e:
            errors.append(e)
            LOG.warning('Cannot read image %s from one of its locations: '
                        '%s', image.image_id, e)
    raise StoreUnavailable(reason='; '.join(str(e) for e in errors)
                           or 'no location')


def open_local_data(image):
    """The image's data file, open, when its first location is in a
    filesystem store (for the server to send with sendfile); None
    otherwise, or when the file can't be opened."""
    locations = image.active_locations
    path = locations and stores.local_path(locations[0]['url'],
                                           locations[0]['metadata'])
    if not path:
        return None
    try:
        return open(path, 'rb')
    except OSError:
        return None


# How often hashing looks whether the image it hashes still exists.
CANCEL_CHECK_SECONDS = 1.0


class Cancelled(exception.GlanceError):
    message = 'Image %(image_id)s was deleted while its data was read.'


def _close(chunks):
    """Release the connection or file behind a read stopped early (the
    http store's iterator is a generator inside an Indexable)."""
    for reader in (chunks, getattr(chunks, 'wrapped', None)):
        if hasattr(reader, 'close'):
            reader.close()


def hash_location(context, image_id, loc, algo):
    """(md5 checksum, ``algo`` hex digest) of the data at a location.

    Raises Cancelled as soon as it sees the image deleted, so that hashing
    a large remote image does not outlive it; StoreUnavailable (or OSError
    while reading) when the data cannot be read.
    """
    try:
        chunks, _size = stores.get(context, loc['url'], loc['metadata'])
    except READ_ERRORS as e:
        raise StoreUnavailable(reason=e)
    md5, digest = hashlib.md5(usedforsecurity=False), hashlib.new(algo)
    checked = time.monotonic()
    try:
        for chunk in chunks:
            md5.update(chunk)
            digest.update(chunk)
            if time.monotonic() - checked >= CANCEL_CHECK_SECONDS:
                checked = time.monotonic()
                if db_api.image_status(image_id) in (None, 'deleted',
                                                     'pending_delete'):
                    raise Cancelled(image_id=image_id)
    finally:
        _close(chunks)
    return md5.hexdigest(), digest.hexdigest()


# Schemes a client may not point an image at: they would expose files of
# this host or credentials of the swift config.
FORBIDDEN_SCHEMES = ('file', 'filesystem', 'swift+config')


def new_location(context, url, metadata=None):
    """A location a client wants to add, and the size of its data; Invalid
    unless a configured store can read it."""
    scheme = url.partition('://')[0]
    if scheme in FORBIDDEN_SCHEMES:
        raise exception.Invalid('Invalid location: scheme %s is not '
                                'allowed.' % scheme)
    metadata = stores.location_metadata(url, metadata)
    try:
        size = stores.size(context, url, metadata)
    except (store_exc.GlanceStoreException, store_exc.BackendException) as e:
        raise exception.Invalid('Invalid location: %s' % e)
    if not size:
        raise exception.Invalid('Invalid location: no data at %s' % url)
    return {'id': None, 'url': url, 'metadata': metadata,
            'status': 'active'}, size


def retire_location(context, loc, delayed, keep_one_active=False):
    """Take a location out of service: claim it (active -> pending_delete,
    so no other worker acts on it), then unless ``delayed`` delete its data
    and mark it deleted. Data that can't be deleted yet (in use) puts the
    location back to active and raises Conflict; any other failure leaves
    it pending_delete for the scrubber. ``keep_one_active``: refuse to take
    an image's last active location (Forbidden)."""
    if not db_api.location_transition(loc['id'], 'active', 'pending_delete',
                                      keep_one_active):
        return
    loc['status'] = 'pending_delete'
    if delayed:
        return
    try:
        delete_data(context, loc)
    except exception.Conflict:
        db_api.location_transition(loc['id'], 'pending_delete', 'active')
        loc['status'] = 'active'
        raise
    db_api.location_transition(loc['id'], 'pending_delete', 'deleted')
    loc['status'] = 'deleted'


class ImageRepoProxy:
    """Locations leaving an image, or the image itself, take their data
    with them, or leave it to the scrubber with ``delayed_delete``."""

    def __init__(self, repo, context):
        self.repo = repo
        self.context = context

    def __getattr__(self, name):
        return getattr(self.repo, name)

    def apply(self, image, changes, from_state=None):
        changes = dict(changes)
        # Retired first: a live image must keep one location, which only
        # the database can tell when requests race.
        for loc in changes.pop('delete_locations', ()):
            retire_location(self.context, loc, CONF.delayed_delete,
                            keep_one_active=True)
        if changes or from_state is not None:
            self.repo.apply(image, changes, from_state)

    def remove(self, image):
        delayed = image.status == 'pending_delete'
        for loc in image.active_locations:
            retire_location(self.context, loc, delayed)
        try:
            self.repo.remove(image)
        except exception.NotFound:
            # A concurrent delete destroyed the row while this one was
            # deleting data; it may have seen that data still pending.
            db_api.finish_scrubbed_images([image.image_id])
            raise
