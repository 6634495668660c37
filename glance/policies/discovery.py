"""Rules for the discovery (info) API."""

from glance.policies import base

rules = [
    base.project_rule(
        'stores_info_detail', base.ADMIN_OR_SERVICE,
        'Show the stores with their backend-specific details.',
        [('GET', '/v2/info/stores/detail')],
        base.Deprecation(base.ADMIN, '2025.1',
                         'Services may now read store details too.')),
]
