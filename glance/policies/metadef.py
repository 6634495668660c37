"""Rules for the metadata definitions (metadefs) API."""

from oslo_log import versionutils
from oslo_policy import policy

from glance.policies import base

METADEF_ADMIN = 'rule:metadef_admin'

NAMESPACES = '/v2/metadefs/namespaces'
NAMESPACE = NAMESPACES + '/{namespace_name}'
OBJECTS = NAMESPACE + '/objects'
OBJECT = OBJECTS + '/{object_name}'
PROPERTIES = NAMESPACE + '/properties'
PROPERTY = PROPERTIES + '/{property_name}'
TAGS = NAMESPACE + '/tags'
TAG = TAGS + '/{tag_name}'
ASSOCIATIONS = NAMESPACE + '/resource_types'

# Before Xena anyone could read metadefs ("rule:metadef_default").
READS_SCOPED = base.Deprecation(
    'rule:metadef_default', versionutils.deprecated.XENA,
    'Metadef reads now depend on the project and on default roles.')


def _read(name, description, path, check_str=base.GET_NAMESPACE):
    return base.project_rule(name, check_str, description, [('GET', path)],
                             READS_SCOPED)


def _write(name, description, method, path):
    return base.project_rule(name, METADEF_ADMIN, description,
                             [(method, path)])


rules = [
    policy.RuleDefault(
        name='metadef_default', check_str='',
        description='Former default of the metadef read rules.'),
    policy.RuleDefault(
        name='metadef_admin', check_str=base.ADMIN,
        description='Who may change metadata definitions.'),
    _read('get_metadef_namespace', 'Show a namespace.', NAMESPACE),
    _read('get_metadef_namespaces', 'List namespaces.', NAMESPACES,
          check_str=base.ADMIN_OR_PROJECT_READER),
    _write('modify_metadef_namespace', 'Update a namespace.',
           'PUT', NAMESPACE),
    _write('add_metadef_namespace', 'Create a namespace.',
           'POST', NAMESPACES),
    _write('delete_metadef_namespace', 'Delete a namespace.',
           'DELETE', NAMESPACE),
    _read('get_metadef_object', 'Show an object of a namespace.', OBJECT),
    _read('get_metadef_objects', 'List the objects of a namespace.',
          OBJECTS),
    _write('modify_metadef_object', 'Update an object of a namespace.',
           'PUT', OBJECT),
    _write('add_metadef_object', 'Create an object in a namespace.',
           'POST', OBJECTS),
    _write('delete_metadef_object', 'Delete an object of a namespace.',
           'DELETE', OBJECT),
    _read('list_metadef_resource_types', 'List resource types.',
          '/v2/metadefs/resource_types'),
    _read('get_metadef_resource_type',
          'List the resource types a namespace is associated with.',
          ASSOCIATIONS),
    _write('add_metadef_resource_type_association',
           'Associate a resource type with a namespace.',
           'POST', ASSOCIATIONS),
    _write('remove_metadef_resource_type_association',
           'Dissociate a resource type from a namespace.',
           'DELETE', ASSOCIATIONS + '/{name}'),
    _read('get_metadef_property', 'Show a property of a namespace.',
          PROPERTY),
    _read('get_metadef_properties', 'List the properties of a namespace.',
          PROPERTIES),
    _write('modify_metadef_property', 'Update a property of a namespace.',
           'PUT', PROPERTY),
    _write('add_metadef_property', 'Create a property in a namespace.',
           'POST', PROPERTIES),
    _write('remove_metadef_property', 'Delete a property of a namespace.',
           'DELETE', PROPERTY),
    _read('get_metadef_tag', 'Show a tag of a namespace.', TAG),
    _read('get_metadef_tags', 'List the tags of a namespace.', TAGS),
    _write('modify_metadef_tag', 'Update a tag of a namespace.',
           'PUT', TAG),
    _write('add_metadef_tag', 'Create one tag in a namespace.',
           'POST', TAG),
    _write('add_metadef_tags', 'Create several tags in a namespace.',
           'POST', TAGS),
    _write('delete_metadef_tag', 'Delete a tag of a namespace.',
           'DELETE', TAG),
    _write('delete_metadef_tags', 'Delete all tags of a namespace.',
           'DELETE', TAGS),
]
