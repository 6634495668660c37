"""The stores image data lives in: the one module that calls glance_store.

Two configurations, one interface. Single-store (``[glance_store]
stores``/``default_store``) knows one store per scheme. Multi-store
(``enabled_backends = id:type,...``, ``[glance_store] default_backend``,
one config group per id) names each store; a location records its store id
in ``metadata['store']``, and every call here takes the location's
metadata so that it reaches the right store either way.
"""

import urllib.parse

import glance_store
from glance_store import exceptions as store_exc
from oslo_config import cfg

from glance.common import exception

CONF = cfg.CONF


def multi_store():
    return bool(CONF.enabled_backends)


class StoreConfigError(exception.GlanceError):
    message = 'The store configuration is not usable: %(reason)s'


def init():
    """Load the configured store drivers (once per process)."""
    try:
        if multi_store():
            glance_store.register_store_opts(CONF)
            glance_store.create_multi_stores(CONF)
            glance_store.verify_store()
        else:
            glance_store.create_stores(CONF)
            glance_store.verify_default_store()
    # glance_store's verify_* report a default store no driver serves
    # with a bare RuntimeError.
    except (RuntimeError, store_exc.GlanceStoreException) as e:
        raise StoreConfigError(reason=e)


def require_multi_store():
    """NotFound for what only a multi-store site has (as upstream)."""
    if not multi_store():
        raise exception.NotFound('Multi backend is not supported at this '
                                 'site.')


def check_store_id(store_id):
    """Invalid unless ``store_id`` names a store of this multi-store site."""
    try:
        glance_store.get_store_from_store_identifier(store_id)
    except store_exc.UnknownScheme:
        raise exception.Invalid('Store %s is not configured.' % store_id)


def default_store_id():
    return CONF.glance_store.default_backend


def add(context, image_id, data, size, algo, store_id=None):
    """Write ``data``; returns (url, size, md5 checksum, ``algo`` digest,
    location metadata)."""
    if multi_store():
        return glance_store.add_with_multihash(
            CONF, image_id, data, size, store_id or default_store_id(), algo,
            context=context)
    return glance_store.add_to_backend_with_multihash(
        CONF, image_id, data, size, algo, context=context)


def _store_of(url, metadata):
    """A location's store id: recorded, or (for a location recorded before
    multi-store was enabled) found from its URL."""
    return (metadata or {}).get('store') or store_for_url(url)


def get(context, url, metadata, offset=0, length=None):
    """(iterator of chunks, size) of the data at a location, or of
    ``length`` bytes of it from ``offset``."""
    try:
        return _get(context, url, metadata, offset, length)
    except store_exc.StoreRandomGetNotSupported:
        # RBD, for one, only reads from the start: skip to the range here
        # rather than refuse ranged downloads.
        chunks, size = _get(context, url, metadata, 0, None)
        wanted = size - offset if length is None else length
        return _byte_range(chunks, offset, wanted), wanted


def _get(context, url, metadata, offset, length):
    if multi_store():
        return glance_store.get(url, _store_of(url, metadata), offset=offset,
                                chunk_size=length, context=context)
    return glance_store.get_from_backend(url, offset=offset,
                                         chunk_size=length, context=context)


def _byte_range(chunks, offset, length):
    """The ``length`` bytes from ``offset`` of a stream of chunks."""
    try:
        for chunk in chunks:
            if offset >= len(chunk):
                offset -= len(chunk)
                continue
            piece = chunk[offset:offset + length]
            offset = 0
            length -= len(piece)
            yield piece
            if not length:
                return
    finally:
        if hasattr(chunks, 'close'):
            chunks.close()


def delete(context, url, metadata):
    if multi_store():
        return glance_store.delete(url, _store_of(url, metadata),
                                   context=context)
    return glance_store.delete_from_backend(url, context=context)


def size(context, url, metadata):
    if multi_store():
        return glance_store.get_size_from_uri_and_backend(
            url, _store_of(url, metadata), context=context)
    return glance_store.get_size_from_backend(url, context=context)


def local_path(url, metadata):
    """The file behind a location in a filesystem store (which a server can
    send with sendfile); None for other stores."""
    try:
        if multi_store():
            store_id = _store_of(url, metadata)
            if CONF.enabled_backends.get(store_id) != 'file':
                return None
            found = glance_store.location.get_location_from_uri_and_backend(
                url, store_id, conf=CONF)
        elif url.startswith('file://'):
            found = glance_store.location.get_location_from_uri(url,
                                                                conf=CONF)
        else:
            return None
    except (store_exc.BadStoreUri, store_exc.UnknownScheme):
        return None
    return found.store_location.path


def _configured():
    """(id, type, driver) of every store a client may see."""
    for store_id, store_type in CONF.enabled_backends.items():
        if store_id.startswith('os_glance_'):
            continue
        yield (store_id, store_type,
               glance_store.get_store_from_store_identifier(store_id))


def store_for_url(url):
    """Id of the multi-store store whose URLs begin like ``url``, or None."""
    for store_id, _type, driver in _configured():
        if driver.url_prefix and url.startswith(driver.url_prefix):
            return store_id
    return None


def location_metadata(url, metadata=None):
    """The metadata of a location a client gives, checked: Invalid unless
    ``url`` is well formed for a configured store. With multi-store it names
    the store, as given (a configured one) or as found from the URL."""
    metadata = dict(metadata or {})
    try:
        if not multi_store():
            glance_store.location.get_location_from_uri(url, conf=CONF)
            return metadata
        if 'store' in metadata:
            check_store_id(metadata['store'])
        else:
            metadata['store'] = store_for_url(url)
        if metadata['store'] is None:
            raise exception.Invalid('Invalid location: no configured store '
                                    'holds %s' % url)
        glance_store.location.get_location_from_uri_and_backend(
            url, metadata['store'], conf=CONF)
    except (store_exc.BadStoreUri, store_exc.UnknownScheme) as e:
        raise exception.Invalid('Invalid location %s: %s' % (url, e))
    return metadata


def http_store_enabled():
    if multi_store():
        return 'http' in CONF.enabled_backends.values()
    return 'http' in CONF.glance_store.stores


# --- /v2/info/stores[/detail] ---------------------------------------------

def listing():
    """The stores as ``GET /v2/info/stores`` lists them (multi-store)."""
    stores = []
    for store_id, store_type, _driver in _configured():
        entry = {'id': store_id}
        description = getattr(CONF, store_id).store_description
        if description:
            entry['description'] = description
        # Strings, not booleans, on the wire.
        if store_id == CONF.glance_store.default_backend:
            entry['default'] = 'true'
        if store_type == 'http':
            entry['read-only'] = 'true'
        stores.append(entry)
    return stores


def details():
    """The listing plus each store's type, weight and properties."""
    drivers = {store_id: (store_type, driver)
               for store_id, store_type, driver in _configured()}
    stores = listing()
    for entry in stores:
        store_type, driver = drivers[entry['id']]
        entry['type'] = store_type
        entry['weight'] = getattr(CONF, entry['id']).weight
        describe = _PROPERTIES.get(store_type)
        entry['properties'] = describe(driver) if describe else {}
    return stores


def _rbd_fsid(driver):
    """The cluster fsid in an RBD store's URL prefix ``rbd://fsid/pool/``;
    None when the store could not learn it (the prefix is then bare)."""
    parts = driver.url_prefix.removeprefix('rbd://').strip('/').split('/')
    if len(parts) != 2 or not parts[0]:
        return None
    return urllib.parse.unquote(parts[0])


_PROPERTIES = {
    'rbd': lambda d: {'chunk_size': d.chunk_size, 'pool': d.pool,
                      'thin_provisioning': d.thin_provisioning,
                      'fsid': _rbd_fsid(d)},
    'file': lambda d: {'data_dir': d.datadir, 'chunk_size': d.chunk_size,
                       'thin_provisioning': d.thin_provisioning},
    'cinder': lambda d: {'volume_type': d.store_conf.cinder_volume_type,
                         'use_multipath': d.store_conf.cinder_use_multipath},
    'swift': lambda d: {'container': getattr(d, 'container', None),
                        'large_object_size': d.large_object_size,
                        'large_object_chunk_size': d.large_object_chunk_size},
    's3': lambda d: {
        's3_store_large_object_size': d.s3_store_large_object_size,
        's3_store_large_object_chunk_size':
            d.s3_store_large_object_chunk_size,
        's3_store_thread_pools': d.s3_store_thread_pools},
    'http': lambda d: {},
}
