"""Rules for images, their data, locations and members."""

from oslo_log import versionutils
from oslo_policy import policy

from glance.policies import base

IMAGE = '/v2/images/{image_id}'
MEMBERS = IMAGE + '/members'
MEMBER = MEMBERS + '/{member_id}'
STORE_COPY = '/v2/stores/{store_id}/{image_id}'

# Before Wallaby every image rule defaulted to "rule:default".
ROLES_ADDED = base.Deprecation(
    base.DEFAULT, versionutils.deprecated.WALLABY,
    'Image rules now tell the reader and member roles of a project apart.')

rules = [
    base.project_rule(
        'add_image', base.CREATE_IMAGE, 'Create an image.',
        [('POST', '/v2/images')], ROLES_ADDED),
    base.project_rule(
        'delete_image', base.ADMIN_OR_PROJECT_MEMBER, 'Delete an image.',
        [('DELETE', IMAGE)], ROLES_ADDED),
    base.project_rule(
        'get_image', base.GET_IMAGE, 'Show an image.',
        [('GET', IMAGE)], ROLES_ADDED),
    base.project_rule(
        'get_images', base.ADMIN_OR_PROJECT_READER, 'List images.',
        [('GET', '/v2/images')], ROLES_ADDED),
    base.project_rule(
        'modify_image', base.ADMIN_OR_PROJECT_MEMBER,
        'Change an image: its attributes, tags, staged data or import.',
        [('PATCH', IMAGE),
         ('PUT', IMAGE + '/tags/{tag_value}'),
         ('DELETE', IMAGE + '/tags/{tag_value}'),
         ('PUT', IMAGE + '/stage'),
         ('POST', IMAGE + '/import')],
        ROLES_ADDED),
    base.project_rule(
        'publicize_image', base.ADMIN,
        'Make an image public (visibility "public").',
        [('PATCH', IMAGE)]),
    base.project_rule(
        'communitize_image', base.ADMIN_OR_PROJECT_MEMBER,
        'Make an image a community image (visibility "community").',
        [('PATCH', IMAGE)], ROLES_ADDED),
    base.project_rule(
        'download_image', base.DOWNLOAD_IMAGE, "Download an image's data.",
        [('GET', IMAGE + '/file')], ROLES_ADDED),
    base.project_rule(
        'download_from_store', base.DOWNLOAD_IMAGE,
        "Download an image's data from a store chosen by the caller.",
        [('GET', IMAGE + '/file')]),
    base.project_rule(
        'upload_image', base.ADMIN_OR_PROJECT_MEMBER,
        "Upload an image's data.",
        [('PUT', IMAGE + '/file')], ROLES_ADDED),
    base.project_rule(
        'delete_image_location', base.ADMIN,
        "Remove a location from an image, or an image's data from one "
        'store.',
        [('PATCH', IMAGE), ('DELETE', STORE_COPY)], ROLES_ADDED),
    base.project_rule(
        'get_image_location', base.ADMIN_OR_PROJECT_READER,
        "See an image's locations.",
        [('GET', IMAGE), ('DELETE', STORE_COPY)], ROLES_ADDED),
    base.project_rule(
        'set_image_location', base.ADMIN_OR_PROJECT_MEMBER,
        "Add or replace an image's locations through an image update.",
        [('PATCH', IMAGE)], ROLES_ADDED),
    base.project_rule(
        'add_image_location', base.SERVICE_OR_PROJECT_MEMBER,
        'Add a location to an image.',
        [('POST', IMAGE + '/locations')]),
    base.project_rule(
        'fetch_image_location', base.SERVICE,
        'List all locations of an image.',
        [('GET', IMAGE + '/locations')]),
    base.project_rule(
        'add_member', base.ADMIN_OR_PROJECT_MEMBER,
        'Share an image with a project.',
        [('POST', MEMBERS)], ROLES_ADDED),
    base.project_rule(
        'delete_member', base.ADMIN_OR_PROJECT_MEMBER,
        'Stop sharing an image with a project.',
        [('DELETE', MEMBER)], ROLES_ADDED),
    base.project_rule(
        'get_member', base.READER_OR_SHARED_MEMBER,
        'Show one member of an image.',
        [('GET', MEMBER)], ROLES_ADDED),
    base.project_rule(
        'get_members', base.READER_OR_SHARED_MEMBER,
        'List the members of an image.',
        [('GET', MEMBERS)], ROLES_ADDED),
    base.project_rule(
        'modify_member', base.SHARED_MEMBER,
        'Accept or reject an image shared with your project.',
        [('PUT', MEMBER)], ROLES_ADDED),
    # The cache rules used to fall back to this one; it still exists so
    # that policy files referring to it keep working.
    policy.RuleDefault(
        name='manage_image_cache', check_str=base.ADMIN,
        description='Manage the image cache.', scope_types=base.SCOPE),
    base.project_rule(
        'deactivate', base.ADMIN_OR_PROJECT_MEMBER, 'Deactivate an image.',
        [('POST', IMAGE + '/actions/deactivate')], ROLES_ADDED),
    base.project_rule(
        'reactivate', base.ADMIN_OR_PROJECT_MEMBER, 'Reactivate an image.',
        [('POST', IMAGE + '/actions/reactivate')], ROLES_ADDED),
    base.project_rule(
        'copy_image', base.ADMIN,
        "Copy an image's data to more stores (import method copy-image).",
        [('POST', IMAGE + '/import')]),
    base.project_rule(
        'list_cached_nodes', base.ADMIN,
        'List the nodes that have an image cached.',
        [('GET', '/v2/cache/nodes/{image_id}')]),
]
