"""Rules for the (deprecated) tasks API."""

from oslo_log import versionutils
from oslo_policy import policy

from glance.policies import base

TASKS = '/v2/tasks'
TASK = TASKS + '/{task_id}'

INTERNAL = (
    '\nGlance also checks this rule when it creates or reads tasks for its '
    'own work, such as image import, so it must not be stricter than the '
    'rules for that work. Restrict the tasks API with "tasks_api_access" '
    'instead.')

# From Xena the API checks "tasks_api_access" on every call, which makes
# the finer rules redundant.
SUPERSEDED = base.Deprecation(
    base.DEFAULT, versionutils.deprecated.XENA,
    'Every tasks API call is guarded by "tasks_api_access"; the finer task '
    'rules will go away.')

rules = [
    base.project_rule(
        'get_task', base.DEFAULT, 'Show a task.' + INTERNAL,
        [('GET', TASK)], SUPERSEDED),
    base.project_rule(
        'get_tasks', base.DEFAULT, 'List tasks.' + INTERNAL,
        [('GET', TASKS)], SUPERSEDED),
    base.project_rule(
        'add_task', base.DEFAULT, 'Create a task.' + INTERNAL,
        [('POST', TASKS)], SUPERSEDED),
    policy.DocumentedRuleDefault(
        name='modify_task', check_str=base.DEFAULT,
        description='Not checked anywhere.',
        operations=[{'method': 'DELETE', 'path': TASK}],
        scope_types=base.SCOPE,
        deprecated_for_removal=True,
        deprecated_reason='The API has never checked this rule.',
        deprecated_since=versionutils.deprecated.WALLABY),
    base.project_rule(
        'tasks_api_access', base.ADMIN,
        'Access to any call of the tasks API. It covers reads and writes '
        'alike; it cannot give them to different roles.',
        [('GET', TASK), ('GET', TASKS), ('POST', TASKS), ('DELETE', TASK)]),
]
