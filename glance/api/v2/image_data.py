"""Image data: upload (``PUT .../file``) and download (``GET .../file``)."""

import re

from oslo_log import log as logging
import webob
import webob.exc

from glance.api import common
from glance.common import exception
from glance import domain
from glance import location
from glance import stores

LOG = logging.getLogger(__name__)

_RANGE = re.compile(r'^bytes=(\d*)-(\d*)$')
# Older clients name the wanted bytes in a request Content-Range instead.
_CONTENT_RANGE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')


def _restore_queued(repo, image):
    """Put a failed upload's image back to queued for another try."""
    image.status = 'queued'
    image.checksum = image.os_hash_algo = image.os_hash_value = None
    try:
        repo.save(image, from_state='saving')
    except exception.GlanceError:
        LOG.warning('Image %s changed during a failed upload; left as it '
                    'is.', image.image_id)


def _declared_size(req):
    """Bytes the client says it sends, if it says."""
    raw = req.headers.get('x-openstack-image-size')
    if raw is None:
        return req.content_length or None
    if not raw.isdigit():
        raise exception.Invalid('x-openstack-image-size must be a '
                                'non-negative integer.')
    return int(raw) or None


def _chosen_store(req):
    """The store a multi-store upload goes to (``X-Image-Meta-Store``, or
    the default one); single-store sites ignore the header, as upstream."""
    if not stores.multi_store():
        return None
    store_id = req.headers.get('X-Image-Meta-Store',
                               stores.default_store_id())
    stores.check_store_id(store_id)
    return store_id


def upload(req, image_id):
    if req.content_type != 'application/octet-stream':
        raise webob.exc.HTTPUnsupportedMediaType(
            explanation='Content-Type must be application/octet-stream.')
    ctx = common.context(req)
    repo, image = common.find_image(req, image_id, 'upload_image')
    try:
        image.status = 'saving'
    except domain.InvalidStatusTransition as e:
        raise exception.Conflict(e.msg)
    size = _declared_size(req)
    store_id = _chosen_store(req)
    repo.save(image, from_state='queued')
    try:
        location.write_data(ctx, image, common.body_stream(req), size,
                            store_id)
    except BaseException:
        _restore_queued(repo, image)
        raise
    image.status = 'active'
    try:
        repo.save(image, from_state='saving')
    except (exception.Conflict, exception.NotFound):
        for loc in image.locations:
            if loc['id'] is None:
                location.delete_data(ctx, loc)
        raise webob.exc.HTTPGone(explanation=location.Gone.message % {
            'image_id': image_id})
    return common.no_content()


def _requested_range(req, size):
    """(offset, length) of a ``Range: bytes=a-b`` request, or None."""
    header = req.headers.get('Range')
    if not header:
        legacy = _CONTENT_RANGE.match(req.headers.get('Content-Range', ''))
        if legacy is None:
            return None
        header = 'bytes=%s-%s' % legacy.groups()[:2]
    if ',' in header:
        raise exception.Invalid('Multiple ranges are not supported.')
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ('', ''):
        raise webob.exc.HTTPRequestRangeNotSatisfiable(
            explanation='Invalid Range header %r.' % header)
    first, last = match.groups()
    if first == '':
        start = max(size - int(last), 0)
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise webob.exc.HTTPRequestRangeNotSatisfiable(
            headers=[('Content-Range', 'bytes */%d' % size)])
    return start, end - start + 1


# Bytes per read when the server iterates a file it can't sendfile.
FILE_CHUNK = 1024 * 1024


def _data(req, ctx, image, offset, length):
    """The response body: for a whole image in a filesystem store, its file
    for the WSGI server to send with sendfile (gunicorn and uWSGI offer
    ``wsgi.file_wrapper``); else glance_store's chunks."""
    file_wrapper = req.environ.get('wsgi.file_wrapper')
    data = (file_wrapper and length is None
            and location.open_local_data(image))
    if data:
        return file_wrapper(data, FILE_CHUNK)
    chunks, _length = location.read_data(ctx, image, offset, length)
    return chunks


@common.no_body
def download(req, image_id):
    ctx = common.context(req)
    _repo, image = common.find_image(req, image_id, 'download_image')
    if image.status == 'deactivated' and not ctx.is_admin:
        raise exception.Forbidden('The requested image has been deactivated. '
                                  'Image data download is forbidden.')
    if not image.active_locations:
        return common.no_content()
    size = image.size or 0
    wanted = _requested_range(req, size) if size else None
    offset, length = wanted or (0, None)
    response = webob.Response(content_type='application/octet-stream',
                              app_iter=_data(req, ctx, image, offset,
                                             length))
    response.content_length = length if wanted else image.size
    if wanted:
        response.status = 206
        response.headers['Content-Range'] = 'bytes %d-%d/%d' % (
            offset, offset + length - 1, size)
    elif image.checksum:
        response.headers['Content-MD5'] = image.checksum
    return response
