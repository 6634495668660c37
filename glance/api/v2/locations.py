"""The location API of v2.17: ``POST`` and ``GET /v2/images/{id}/locations``.

Adding a location makes a queued image active at once; unless the caller
gave ``validation_data``, its checksum and os_hash_value are computed from
the data in the background (``do_secure_hash``), as upstream does.
"""

import hashlib
import threading

from oslo_config import cfg
from oslo_log import log as logging

from glance.api import common
from glance.common import exception
from glance import domain
from glance import gateway
from glance import location
from glance import policy

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

HASH_ALGORITHMS = ('md5', 'sha1', 'sha256', 'sha512')


def _validation_data(body):
    data = body.get('validation_data') or {}
    if not isinstance(data, dict):
        raise exception.Invalid('validation_data must be an object.')
    algo, value = data.get('os_hash_algo'), data.get('os_hash_value')
    if (algo is None) != (value is None):
        raise exception.Invalid('os_hash_algo and os_hash_value must be '
                                'given together.')
    if algo is not None and (algo not in HASH_ALGORITHMS
                             or not isinstance(value, str)):
        raise exception.Invalid('os_hash_algo must be one of %s.'
                                % ', '.join(HASH_ALGORITHMS))
    return algo, value


def _check_caller_may_add(ctx, url):
    if 'service' in ctx.service_roles or 'service' in ctx.roles:
        return
    http_ok = 'http' in CONF.glance_store.stores
    if not (url.startswith(('http://', 'https://')) and http_ok):
        raise exception.Forbidden('http store must be enabled to use '
                                  'location API by normal user.')


def add(req, image_id):
    ctx = common.context(req)
    body = common.json_body(req)
    url = body.get('url')
    if not isinstance(url, str) or not url or len(url) > 255:
        raise exception.Invalid('url must be a string of at most 255 '
                                'characters.')
    algo, value = _validation_data(body)
    repo, image = common.find_image(req, image_id, 'add_image_location')
    _check_caller_may_add(ctx, url)
    if image.status != 'queued':
        raise exception.Conflict('Locations can only be added to a queued '
                                 'image; image %s is %s.'
                                 % (image_id, image.status))
    image.size = location.check_new_location(ctx, url)
    image.locations.append({'id': None, 'url': url, 'metadata': {},
                            'status': 'active'})
    if algo is not None:
        image.os_hash_algo, image.os_hash_value = algo, value
    try:
        image.status = 'active'
    except domain.InvalidStatusTransition as e:
        raise exception.Conflict(e.msg)
    repo.save(image, from_state='queued')
    if algo is None and CONF.do_secure_hash:
        threading.Thread(target=_hash_in_background, daemon=True,
                         args=(ctx, image_id)).start()
    return common.no_content(status=202)


def _hash_in_background(ctx, image_id):
    for attempt in range(CONF.http_retries + 1):
        try:
            repo = gateway.image_repo(ctx)
            image = repo.get(image_id)
            md5 = hashlib.md5(usedforsecurity=False)
            digest = hashlib.new(CONF.hashing_algorithm)
            chunks, _size = location.read_data(ctx, image)
            for chunk in chunks:
                md5.update(chunk)
                digest.update(chunk)
            image.checksum = md5.hexdigest()
            image.os_hash_algo = CONF.hashing_algorithm
            image.os_hash_value = digest.hexdigest()
            repo.save(image)
            return
        except Exception as e:
            LOG.warning('Hashing the data of image %s failed (attempt %d): '
                        '%s', image_id, attempt + 1, e)


def index(req, image_id):
    ctx = common.context(req)
    _repo, image = common.find_image(req, image_id)
    policy.authorize(ctx, 'fetch_image_location', common.policy_target(image))
    return common.json_response([{'url': loc['url'],
                                  'metadata': loc['metadata']}
                                 for loc in image.active_locations])
