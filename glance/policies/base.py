"""Check strings shared by the rule modules, and the three base rules.

The check strings are upstream Glance's current defaults, character for
character, so operators' policy files and `oslopolicy-*` output keep the
same meaning.
"""

from typing import NamedTuple

from oslo_policy import policy

ADMIN = 'rule:context_is_admin'
DEFAULT = 'rule:default'
SERVICE = 'rule:service_api'

PROJECT_MEMBER = 'role:member and project_id:%(project_id)s'
PROJECT_READER = 'role:reader and project_id:%(project_id)s'
# The target's member_id is the caller's project when it sees the image
# through a membership.
IMAGE_MEMBER = 'project_id:%(member_id)s'
_VISIBLE_TO_OTHERS = ("'community':%(visibility)s or "
                      "'public':%(visibility)s or "
                      "'shared':%(visibility)s")
_OWNER_MEMBER_OR_VISIBLE = (
    f'project_id:%(project_id)s or {IMAGE_MEMBER} or {_VISIBLE_TO_OTHERS}')

ADMIN_OR_PROJECT_MEMBER = f'{ADMIN} or ({PROJECT_MEMBER})'
ADMIN_OR_PROJECT_READER = f'{ADMIN} or ({PROJECT_READER})'
GET_IMAGE = f'{ADMIN} or (role:reader and ({_OWNER_MEMBER_OR_VISIBLE}))'
DOWNLOAD_IMAGE = f'{ADMIN} or (role:member and ({_OWNER_MEMBER_OR_VISIBLE}))'
CREATE_IMAGE = f'{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)'
SHARED_MEMBER = f'{ADMIN} or (role:member and {IMAGE_MEMBER})'
# Unparenthesised on purpose: upstream's string parses as
# "admin or (reader and (...))" all the same.
READER_OR_SHARED_MEMBER = (
    f'{ADMIN} or role:reader and (project_id:%(project_id)s or '
    f'{IMAGE_MEMBER})')
SERVICE_OR_PROJECT_MEMBER = (
    f'{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)')
ADMIN_OR_SERVICE = f'{ADMIN} or {SERVICE}'
GET_NAMESPACE = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or "
    f"'public':%(visibility)s))")

SCOPE = ['project']


class Deprecation(NamedTuple):
    """The default a rule had before, kept for enforce_new_defaults=False."""

    check_str: str
    since: str
    reason: str


def project_rule(name, check_str, description, operations,
                 deprecation=None):
    """A documented project-scoped rule.

    operations: (method, path) pairs of the API calls the rule guards.
    """
    deprecated_rule = None
    if deprecation:
        deprecated_rule = policy.DeprecatedRule(
            name=name, check_str=deprecation.check_str,
            deprecated_reason=deprecation.reason,
            deprecated_since=deprecation.since)
    return policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description,
        operations=[{'method': method, 'path': path}
                    for method, path in operations],
        scope_types=SCOPE, deprecated_rule=deprecated_rule)


rules = [
    policy.RuleDefault(
        name='default', check_str='',
        description='Used for any rule that is not defined.',
        deprecated_rule=policy.DeprecatedRule(
            name='default', check_str=ADMIN,
            deprecated_reason='Rules left out of the policy file now take '
                              'their defaults from code; set "default" to '
                              '"role:admin" explicitly if unknown rules '
                              'should be admin-only.',
            deprecated_since='Ussuri')),
    policy.RuleDefault(
        name='context_is_admin', check_str='role:admin',
        description='Who counts as an administrator (is_admin).'),
    # Admin stays allowed because some services still call Glance with
    # admin rather than service-role tokens.
    policy.RuleDefault(
        name='service_api', check_str='role:service or role:admin',
        description='Calls made by other OpenStack services.'),
]
