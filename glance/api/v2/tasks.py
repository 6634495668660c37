"""Tasks: the (deprecated) tasks API under ``/v2/tasks`` and the tasks
of one image, ``GET /v2/images/{id}/tasks``.

Every ``/v2/tasks`` call needs ``tasks_api_access`` (admins by default).
Only ``import`` tasks can be created there: the other types are what
glance itself creates for its own work.
"""

import urllib.parse

from oslo_utils import uuidutils

from glance.api import common
from glance.api.v2 import images
from glance.api.v2 import schemas
from glance.common import exception
from glance.common import external_uri
from glance import domain
from glance import gateway
from glance import policy
from glance import tasks

STATUSES = ('pending', 'processing', 'success', 'failure')
SORT_KEYS = ('id', 'type', 'status', 'owner', 'expires_at', 'created_at',
             'updated_at')
# Shown in lists; a task's input, result and message only on its own.
STUB_FIELDS = ('id', 'type', 'status', 'owner', 'created_at', 'updated_at',
               'expires_at', 'self', 'schema')


def task_view(task):
    view = {'id': task.task_id, 'type': task.type, 'status': task.status,
            'owner': task.owner, 'input': task.task_input,
            'result': task.result, 'message': task.message,
            'created_at': images.timestamp(task.created_at),
            'updated_at': images.timestamp(task.updated_at),
            'self': '/v2/tasks/%s' % task.task_id,
            'schema': '/v2/schemas/task'}
    for name in ('image_id', 'request_id', 'user_id'):
        if getattr(task, name):
            view[name] = getattr(task, name)
    if task.expires_at:
        view['expires_at'] = images.timestamp(task.expires_at)
    return view


def _authorize(ctx, action):
    target = {'project_id': ctx.project_id}
    policy.authorize(ctx, 'tasks_api_access', target)
    policy.authorize(ctx, action, target)


def _import_from(task_input):
    url = task_input.get('import_from')
    if not isinstance(url, str) or not url.startswith(('http://',
                                                       'https://')):
        raise exception.Invalid('import_from must be an http or https URL.')
    if not external_uri.is_allowed(url):
        raise exception.Invalid('URI for legacy import task does not pass '
                                'filtering: %s' % url)
    return url


def create(req):
    ctx = common.context(req)
    _authorize(ctx, 'add_task')
    body = common.json_body(req)
    for name in ('type', 'input'):
        if name not in body:
            raise exception.Invalid("Task '%s' is required" % name)
    schemas.validate('task', body)
    if body['type'] != 'import':
        raise exception.Invalid('Only import tasks can be created through '
                                'the tasks API.')
    task_input = body['input'] or {}
    url = _import_from(task_input)
    image = images.new_image(ctx, dict(task_input.get('image_properties')
                                       or {}))
    task = domain.new_task(ctx, 'import', task_input)
    # The view is taken before the work starts: the worker moves the same
    # task object on, and the answer to the create is the pending task.
    created = task_view(task)
    tasks.start(ctx, task, tasks.legacy_import(ctx, image, url))
    return common.json_response(created, status=201, headers={
        'Location': '/v2/tasks/%s' % task.task_id})


def _list_query(params):
    query = {'sort_key': params.get('sort_key', 'created_at'),
             'sort_dir': params.get('sort_dir', 'desc'), 'filters': {}}
    if query['sort_dir'] not in ('asc', 'desc'):
        raise exception.Invalid('Invalid sort direction: %s'
                                % query['sort_dir'])
    if query['sort_key'] not in SORT_KEYS:
        raise exception.Invalid('Invalid sort key: %s' % query['sort_key'])
    for name, choices in (('status', STATUSES), ('type', ('import',))):
        if params.get(name):
            if params[name] not in choices:
                raise exception.Invalid('Invalid %s value: %s'
                                        % (name, params[name]))
            query['filters'][name] = params[name]
    if 'marker' in params:
        if not uuidutils.is_uuid_like(params['marker']):
            raise exception.Invalid('Invalid marker format')
        query['marker'] = params['marker']
    query['limit'] = images.parse_limit(params)
    return query


@common.no_body
def index(req):
    ctx = common.context(req)
    _authorize(ctx, 'get_tasks')
    query = _list_query(req.GET)
    try:
        found = gateway.task_repo(ctx).list(**query)
    except exception.NotFound as e:
        raise exception.Invalid(e.msg)
    params = [(k, v) for k, v in req.GET.items() if k != 'marker']
    body = {'tasks': [{k: v for k, v in task_view(task).items()
                       if k in STUB_FIELDS} for task in found],
            'first': '/v2/tasks' + ('?' + urllib.parse.urlencode(params)
                                    if params else ''),
            'schema': '/v2/schemas/tasks'}
    if found and len(found) == query['limit']:
        body['next'] = '/v2/tasks?' + urllib.parse.urlencode(
            params + [('marker', found[-1].task_id)])
    return common.json_response(body)


@common.no_body
def show(req, task_id):
    ctx = common.context(req)
    _authorize(ctx, 'get_task')
    return common.json_response(task_view(gateway.task_repo(ctx).get(
        task_id)))


def _db_timestamp(value):
    return value.strftime('%Y-%m-%dT%H:%M:%S.%f') if value else None


@common.no_body
def of_image(req, image_id):
    """The image's tasks, in the database's format as upstream shows them
    (``deleted``, ``deleted_at``, timestamps without ``Z``)."""
    ctx = common.context(req)
    common.find_image(req, image_id)
    found = gateway.task_repo(ctx).of_image(image_id)
    for task in found:
        for name in ('created_at', 'updated_at', 'deleted_at', 'expires_at'):
            task[name] = _db_timestamp(task[name])
    return common.json_response({'tasks': found})
