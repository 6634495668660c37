"""The location API of v2.17: ``POST`` and ``GET /v2/images/{id}/locations``.

Adding a location is a ``location_import`` task: the request checks what
it can at once (400/403/409), moves the queued image to ``importing`` (so
a second add gets 409) and answers 202; the task records the location and
makes the image active, hashing its data first when ``validation_data``
must be verified (``glance.tasks.location_import``).
"""

import hashlib

from oslo_config import cfg

from glance.api import common
from glance.common import exception
from glance.common import external_uri
from glance import domain
from glance import policy
from glance import stores
from glance import tasks

CONF = cfg.CONF

HASH_ALGORITHMS = ('md5', 'sha1', 'sha256', 'sha512')


def _validation_data(body):
    """The request's validation_data, checked as upstream's schema and
    hash-size rules do: both keys or none, a known algorithm, a hex value
    of that algorithm's size."""
    data = body.get('validation_data') or {}
    if not isinstance(data, dict) or set(data) - {'os_hash_algo',
                                                  'os_hash_value'}:
        raise exception.Invalid('validation_data may only hold os_hash_algo '
                                'and os_hash_value.')
    if not data:
        return {}
    algo, value = data.get('os_hash_algo'), data.get('os_hash_value')
    if algo is None or value is None:
        raise exception.Invalid('os_hash_algo and os_hash_value must be '
                                'given together.')
    if algo not in HASH_ALGORITHMS:
        raise exception.Invalid('os_hash_algo must be one of %s.'
                                % ', '.join(HASH_ALGORITHMS))
    try:
        size = len(bytes.fromhex(value))
    except (TypeError, ValueError):
        raise exception.Invalid('os_hash_value (%s) is not a valid '
                                'hexadecimal value.' % value)
    if size != hashlib.new(algo).digest_size:
        raise exception.Invalid('os_hash_value (%s) is not the correct size '
                                'for %s (should be %d bytes).'
                                % (value, algo, hashlib.new(algo).digest_size))
    return {'os_hash_algo': algo, 'os_hash_value': value}


def _check_caller_may_add(ctx, url):
    """Only the service role may add URLs of any store; others only http
    URLs, and only when the http store is on."""
    if 'service' in ctx.roles or 'service' in ctx.service_roles:
        return
    if not (url.startswith(('http://', 'https://'))
            and stores.http_store_enabled()):
        raise exception.Forbidden('http store must be enabled to use '
                                  'location API by normal user.')


def add(req, image_id):
    ctx = common.context(req)
    body = common.json_body(req)
    url = body.get('url')
    if not isinstance(url, str) or not url or len(url) > 255:
        raise exception.Invalid('url must be a string of at most 255 '
                                'characters.')
    repo, image = common.find_image(req, image_id, 'add_image_location')
    if image.status != 'queued':
        raise exception.Conflict("It's not allowed to add locations if image "
                                 "status is %s." % image.status)
    _check_caller_may_add(ctx, url)
    validation_data = _validation_data(body)
    stores.location_metadata(url)  # a malformed URL is refused at once
    if url.startswith(('http://', 'https://')) and (
            not external_uri.is_allowed(url)):
        raise exception.Invalid('URI for add location does not pass '
                                'filtering: %s' % url)
    task = domain.new_task(ctx, 'location_import', {
        'image_id': image_id, 'loc_url': url,
        'validation_data': validation_data}, image_id=image_id)
    policy.authorize(ctx, 'add_task', {'project_id': ctx.project_id})
    image.status = 'importing'
    repo.save(image, from_state='queued')
    tasks.start(ctx, task, tasks.location_import(ctx, image_id, url,
                                                 validation_data))
    return common.no_content(status=202)


def index(req, image_id):
    _repo, image = common.find_image(req, image_id, 'fetch_image_location')
    return common.json_response([{'url': loc['url'],
                                  'metadata': loc['metadata']}
                                 for loc in image.active_locations])
