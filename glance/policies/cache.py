"""Rules for the image cache API."""

from oslo_log import versionutils

from glance.policies import base

CACHE = '/v2/cache'

# Until Xena every cache call was checked against "manage_image_cache".
SPLIT_FROM_MANAGE = base.Deprecation(
    'rule:manage_image_cache', versionutils.deprecated.XENA,
    'Each cache call now has its own rule.')

rules = [
    base.project_rule(
        'cache_image', base.ADMIN, 'Queue an image for caching.',
        [('PUT', CACHE + '/{image_id}')], SPLIT_FROM_MANAGE),
    base.project_rule(
        'cache_list', base.ADMIN, 'List cached and queued images.',
        [('GET', CACHE)], SPLIT_FROM_MANAGE),
    base.project_rule(
        'cache_delete', base.ADMIN,
        'Remove one or all images from the cache and the queue.',
        [('DELETE', CACHE), ('DELETE', CACHE + '/{image_id}')],
        SPLIT_FROM_MANAGE),
    base.project_rule(
        'cache_clean', base.ADMIN,
        'Remove invalid and stalled images from the cache.',
        [('POST', CACHE + '/clean')]),
    base.project_rule(
        'cache_prune', base.ADMIN,
        'Evict cached images until the cache is within its size limit.',
        [('POST', CACHE + '/prune')]),
]
