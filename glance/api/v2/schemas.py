"""JSON schemas of images, members and tasks, served to clients and used to
validate what they send (python-glanceclient validates against them too)."""

import functools
import json

import jsonschema
from oslo_config import cfg
from oslo_log import log as logging

from glance.api import common
from glance.common import exception

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

UUID_PATTERN = ('^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}'
                '-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$')
IMAGE_STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted',
                  'uploading', 'importing', 'pending_delete', 'deactivated']
CUSTOM_PROPERTIES_FILE = 'schema-image.json'


def _field(kind, description, nullable=False, read_only=False, **extra):
    field = {'type': ['null', kind] if nullable else kind,
             'description': description}
    if read_only:
        field['readOnly'] = True
    field.update(extra)
    return field


def _base_image_properties():
    formats = CONF.image_format
    location = {
        'type': 'object',
        'properties': {
            'url': {'type': 'string', 'maxLength': 255},
            'metadata': {'type': 'object'},
            'validation_data': {
                'description': 'Values for checksum and os_hash_* when the '
                               'image has none yet; must equal them '
                               'otherwise.',
                'type': 'object', 'writeOnly': True,
                'additionalProperties': False,
                'properties': {
                    'checksum': {'type': 'string', 'minLength': 32,
                                 'maxLength': 32},
                    'os_hash_algo': {'type': 'string', 'maxLength': 64},
                    'os_hash_value': {'type': 'string', 'maxLength': 128}},
                'required': ['os_hash_algo', 'os_hash_value']}},
        'required': ['url', 'metadata'],
    }
    return {
        'id': _field('string', 'An identifier for the image',
                     pattern=UUID_PATTERN),
        'name': _field('string', 'Descriptive name for the image', True,
                       maxLength=255),
        'status': _field('string', 'Status of the image', read_only=True,
                         enum=IMAGE_STATUSES),
        'visibility': _field('string', 'Scope of image accessibility',
                             enum=['community', 'public', 'private',
                                   'shared']),
        'protected': _field('boolean', 'If true, image will not be '
                                       'deletable.'),
        'os_hidden': _field('boolean', 'If true, image will not appear in '
                                       'default image list response.'),
        'checksum': _field('string', 'md5 hash of image contents.', True,
                           True, maxLength=32),
        'os_hash_algo': _field('string', 'Algorithm of os_hash_value', True,
                               True, maxLength=64),
        'os_hash_value': _field('string', 'Hexdigest of the image contents '
                                          'using os_hash_algo', True, True,
                                maxLength=128),
        'owner': _field('string', 'Owner of the image', True, maxLength=255),
        'size': _field('integer', 'Size of image file in bytes', True, True),
        'virtual_size': _field('integer', 'Virtual size of image in bytes',
                               True, True),
        'container_format': _field('string', 'Format of the container', True,
                                   enum=[None] + formats.container_formats),
        'disk_format': _field('string', 'Format of the disk', True,
                              enum=[None] + formats.disk_formats),
        'created_at': _field('string', 'Date and time of image registration',
                             read_only=True),
        'updated_at': _field('string', 'Date and time of the last image '
                                       'modification', read_only=True),
        'tags': _field('array', 'List of strings related to the image',
                       items={'type': 'string', 'maxLength': 255}),
        'direct_url': _field('string', 'URL to access the image file kept '
                                       'in external store', read_only=True),
        'min_ram': _field('integer', 'Amount of ram (in MB) required to '
                                     'boot image.'),
        'min_disk': _field('integer', 'Amount of disk space (in GB) '
                                      'required to boot image.'),
        'self': _field('string', 'An image self url', read_only=True),
        'file': _field('string', 'An image file url', read_only=True),
        'stores': _field('string', 'Stores holding the image data, '
                                   'comma-separated (multi-store only).',
                         read_only=True),
        'schema': _field('string', 'An image schema url', read_only=True),
        'locations': _field('array', 'A set of URLs to access the image '
                                     'file kept in external store',
                            items=location),
    }


def _custom_properties():
    path = CONF.find_file(CUSTOM_PROPERTIES_FILE)
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        LOG.warning('Ignoring %s: %s', path, e)
        return {}


@functools.cache
def image_schema():
    properties = _base_image_properties()
    for name, definition in _custom_properties().items():
        properties.setdefault(name, dict(definition, is_base=False))
    return {
        'name': 'image',
        'properties': properties,
        'additionalProperties': {'type': 'string'},
        'links': [{'rel': 'self', 'href': '{self}'},
                  {'rel': 'enclosure', 'href': '{file}'},
                  {'rel': 'describedby', 'href': '{schema}'}],
    }


def _collection(name, item_schema, paginated):
    properties = {name: {'type': 'array', 'items': item_schema},
                  'schema': {'type': 'string'}}
    links = [{'rel': 'describedby', 'href': '{schema}'}]
    if paginated:
        properties.update(first={'type': 'string'}, next={'type': 'string'})
        links = [{'rel': 'first', 'href': '{first}'},
                 {'rel': 'next', 'href': '{next}'}] + links
    return {'name': name, 'properties': properties, 'links': links}


MEMBER_SCHEMA = {
    'name': 'member',
    'properties': {
        'member_id': {'type': 'string',
                      'description': 'An identifier for the image member '
                                     '(tenantId)'},
        'image_id': {'type': 'string', 'description': 'An identifier for '
                                                      'the image',
                     'pattern': UUID_PATTERN},
        'created_at': {'type': 'string', 'description': 'Date and time of '
                                                        'image member '
                                                        'creation'},
        'updated_at': {'type': 'string', 'description': 'Date and time of '
                                                        'last modification '
                                                        'of image member'},
        'status': {'type': 'string', 'description': 'The status of this '
                                                    'image member',
                   'enum': ['pending', 'accepted', 'rejected']},
        'schema': {'type': 'string', 'readOnly': True},
    },
}


TASK_SCHEMA = {
    'name': 'task',
    'properties': {
        'id': _field('string', 'An identifier for the task',
                     pattern=UUID_PATTERN),
        'type': _field('string', 'The type of task represented by this '
                                 'content',
                       enum=['import', 'api_image_import',
                             'location_import']),
        'status': _field('string', 'The current status of this task',
                         enum=['pending', 'processing', 'success',
                               'failure']),
        'input': _field('object', 'The parameters required by task, JSON '
                                  'blob', True),
        'result': _field('object', 'The result of current task, JSON blob',
                         True),
        'owner': _field('string', 'An identifier for the owner of this '
                                  'task'),
        'message': _field('string', 'Human-readable informative message only '
                                    'included when appropriate (usually on '
                                    'failure)'),
        'image_id': _field('string', 'Image associated with the task'),
        'request_id': _field('string', 'Human-readable informative '
                                       'request-id'),
        'user_id': _field('string', 'User associated with the task'),
        'expires_at': _field('string', 'Datetime when this resource would be '
                                       'subject to removal', True),
        'created_at': _field('string', 'Datetime when this resource was '
                                       'created'),
        'updated_at': _field('string', 'Datetime when this resource was '
                                       'updated'),
        'self': {'readOnly': True, 'type': 'string'},
        'schema': {'readOnly': True, 'type': 'string'},
    },
}


def _task_stub_schema():
    properties = {k: v for k, v in TASK_SCHEMA['properties'].items()
                  if k not in ('input', 'result', 'message')}
    return dict(TASK_SCHEMA, properties=properties)


@functools.cache
def _validator(name):
    """A validator of schema ``name``, built (and the schema itself
    checked) once: checking it costs far more than validating a request."""
    if name == 'task':
        schema = TASK_SCHEMA
    else:
        schema = {k: v for k, v in image_schema().items() if k != 'links'}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(name, values):
    """400 unless ``values`` fits schema ``name`` ('image': a partial
    image, or 'task')."""
    error = jsonschema.exceptions.best_match(
        _validator(name).iter_errors(values))
    if error is not None:
        raise exception.Invalid('Provided object does not match schema '
                                "'%s': %s" % (name, error.message))


def image(req):
    return common.json_response(image_schema())


def images(req):
    return common.json_response(_collection('images', image_schema(), True))


def member(req):
    return common.json_response(MEMBER_SCHEMA)


def members(req):
    return common.json_response(_collection('members', MEMBER_SCHEMA, False))


def task(req):
    return common.json_response(TASK_SCHEMA)


def tasks(req):
    return common.json_response(_collection('tasks', _task_stub_schema(),
                                            True))
