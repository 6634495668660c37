"""Initial schema: upstream Glance's tables as of its 2024.1 head.

Everything upstream's ``2024_1_contract01`` has, except
``image_locations.status``, which a revision of its own adds.

Revision ID: 2024_1_schema01
Revises:
"""

from alembic import op
import sqlalchemy as sa

revision = '2024_1_schema01'
down_revision = None
branch_labels = None
depends_on = None

TABLE_ARGS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8'}


def _soft_delete_columns():
    return [sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('updated_at', sa.DateTime(), nullable=True),
            sa.Column('deleted_at', sa.DateTime(), nullable=True),
            sa.Column('deleted', sa.Boolean(), nullable=False)]


def _timestamp_columns():
    return [sa.Column('created_at', sa.DateTime(), nullable=False),
            sa.Column('updated_at', sa.DateTime(), nullable=True)]


def _image_child(table, *columns):
    """properties, tags, locations and members: rows owned by one image."""
    op.create_table(
        table,
        sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
        sa.Column('image_id', sa.String(36), sa.ForeignKey('images.id'),
                  nullable=False),
        *columns,
        *_soft_delete_columns(),
        **TABLE_ARGS)
    op.create_index('ix_%s_image_id' % table, table, ['image_id'])


def _metadef_child(table, *columns):
    """objects, properties and tags: named rows unique within a namespace."""
    op.create_table(
        table,
        sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
        sa.Column('namespace_id', sa.Integer(),
                  sa.ForeignKey('metadef_namespaces.id'), nullable=False),
        sa.Column('name', sa.String(80), nullable=False),
        *columns,
        *_timestamp_columns(),
        sa.UniqueConstraint('namespace_id', 'name',
                            name='uq_%s_namespace_id_name' % table),
        **TABLE_ARGS)
    op.create_index('ix_%s_name' % table, table, ['name'])


def _create_images():
    op.create_table(
        'images',
        sa.Column('id', sa.String(36), primary_key=True, nullable=False),
        sa.Column('name', sa.String(255)),
        sa.Column('size', sa.BigInteger()),
        sa.Column('status', sa.String(30), nullable=False),
        *_soft_delete_columns(),
        sa.Column('disk_format', sa.String(20)),
        sa.Column('container_format', sa.String(20)),
        sa.Column('checksum', sa.String(32)),
        sa.Column('owner', sa.String(255)),
        sa.Column('min_disk', sa.Integer(), nullable=False),
        sa.Column('min_ram', sa.Integer(), nullable=False),
        sa.Column('protected', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column('virtual_size', sa.BigInteger()),
        sa.Column('visibility',
                  sa.Enum('private', 'public', 'shared', 'community',
                          name='image_visibility'),
                  nullable=False, server_default='shared'),
        sa.Column('os_hidden', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column('os_hash_algo', sa.String(64)),
        sa.Column('os_hash_value', sa.String(128)),
        **TABLE_ARGS)
    for name, column in [('checksum_image_idx', 'checksum'),
                         ('ix_images_deleted', 'deleted'),
                         ('owner_image_idx', 'owner'),
                         ('created_at_image_idx', 'created_at'),
                         ('updated_at_image_idx', 'updated_at'),
                         ('visibility_image_idx', 'visibility'),
                         ('os_hidden_image_idx', 'os_hidden'),
                         ('os_hash_value_image_idx', 'os_hash_value')]:
        op.create_index(name, 'images', [column])


def _create_image_children():
    _image_child('image_properties',
                 sa.Column('name', sa.String(255), nullable=False),
                 sa.Column('value', sa.Text()),
                 sa.UniqueConstraint(
                     'image_id', 'name',
                     name='ix_image_properties_image_id_name'))
    op.create_index('ix_image_properties_deleted', 'image_properties',
                    ['deleted'])

    _image_child('image_locations',
                 sa.Column('value', sa.Text(), nullable=False),
                 sa.Column('meta_data', sa.Text()))
    op.create_index('ix_image_locations_deleted', 'image_locations',
                    ['deleted'])

    _image_child('image_members',
                 sa.Column('member', sa.String(255), nullable=False),
                 sa.Column('can_share', sa.Boolean(), nullable=False),
                 sa.Column('status', sa.String(20), nullable=False,
                           server_default='pending'),
                 sa.UniqueConstraint(
                     'image_id', 'member', 'deleted_at',
                     name='image_members_image_id_member_deleted_at_key'))
    op.create_index('ix_image_members_deleted', 'image_members', ['deleted'])
    op.create_index('ix_image_members_image_id_member', 'image_members',
                    ['image_id', 'member'])

    _image_child('image_tags',
                 sa.Column('value', sa.String(255), nullable=False))
    op.create_index('ix_image_tags_image_id_tag_value', 'image_tags',
                    ['image_id', 'value'])


def _create_tasks():
    op.create_table(
        'tasks',
        sa.Column('id', sa.String(36), primary_key=True, nullable=False),
        sa.Column('type', sa.String(30), nullable=False),
        sa.Column('status', sa.String(30), nullable=False),
        sa.Column('owner', sa.String(255), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        *_soft_delete_columns(),
        sa.Column('image_id', sa.String(36), nullable=True),
        sa.Column('request_id', sa.String(64), nullable=True),
        sa.Column('user_id', sa.String(64), nullable=True),
        **TABLE_ARGS)
    for column in ('type', 'status', 'owner', 'deleted', 'updated_at',
                   'image_id'):
        op.create_index('ix_tasks_%s' % column, 'tasks', [column])

    op.create_table(
        'task_info',
        sa.Column('task_id', sa.String(36), sa.ForeignKey('tasks.id'),
                  primary_key=True, nullable=False),
        sa.Column('input', sa.Text()),
        sa.Column('result', sa.Text()),
        sa.Column('message', sa.Text()),
        **TABLE_ARGS)


def _create_metadefs():
    op.create_table(
        'metadef_namespaces',
        sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
        sa.Column('namespace', sa.String(80), nullable=False),
        sa.Column('display_name', sa.String(80)),
        sa.Column('description', sa.Text()),
        sa.Column('visibility', sa.String(32)),
        sa.Column('protected', sa.Boolean()),
        sa.Column('owner', sa.String(255), nullable=False),
        *_timestamp_columns(),
        sa.UniqueConstraint('namespace',
                            name='uq_metadef_namespaces_namespace'),
        **TABLE_ARGS)
    op.create_index('ix_metadef_namespaces_owner', 'metadef_namespaces',
                    ['owner'])

    op.create_table(
        'metadef_resource_types',
        sa.Column('id', sa.Integer(), primary_key=True, nullable=False),
        sa.Column('name', sa.String(80), nullable=False),
        sa.Column('protected', sa.Boolean(), nullable=False),
        *_timestamp_columns(),
        sa.UniqueConstraint('name', name='uq_metadef_resource_types_name'),
        **TABLE_ARGS)

    op.create_table(
        'metadef_namespace_resource_types',
        sa.Column('resource_type_id', sa.Integer(),
                  sa.ForeignKey('metadef_resource_types.id'),
                  primary_key=True, nullable=False),
        sa.Column('namespace_id', sa.Integer(),
                  sa.ForeignKey('metadef_namespaces.id'),
                  primary_key=True, nullable=False),
        sa.Column('properties_target', sa.String(80)),
        sa.Column('prefix', sa.String(80)),
        *_timestamp_columns(),
        **TABLE_ARGS)
    op.create_index('ix_metadef_ns_res_types_namespace_id',
                    'metadef_namespace_resource_types', ['namespace_id'])

    _metadef_child('metadef_objects',
                   sa.Column('description', sa.Text()),
                   sa.Column('required', sa.Text()),
                   sa.Column('json_schema', sa.Text(), nullable=False))
    _metadef_child('metadef_properties',
                   sa.Column('json_schema', sa.Text(), nullable=False))
    _metadef_child('metadef_tags')


def _create_cache_tables():
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'node_reference',
        sa.Column('node_reference_id', big_id, primary_key=True,
                  autoincrement=True, nullable=False),
        sa.Column('node_reference_url', sa.String(255), nullable=False),
        sa.UniqueConstraint('node_reference_url',
                            name='uq_node_reference_node_reference_url'),
        **TABLE_ARGS)
    op.create_table(
        'cached_images',
        sa.Column('id', big_id, primary_key=True, autoincrement=True,
                  nullable=False),
        sa.Column('image_id', sa.String(36), nullable=False),
        sa.Column('last_accessed', sa.DateTime(), nullable=False),
        sa.Column('last_modified', sa.DateTime(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('checksum', sa.String(32), nullable=True),
        sa.Column('node_reference_id', big_id,
                  sa.ForeignKey('node_reference.node_reference_id'),
                  nullable=False),
        sa.UniqueConstraint('image_id', 'node_reference_id',
                            name='ix_cached_images_image_id_node_reference_id'),
        **TABLE_ARGS)


def upgrade():
    _create_images()
    _create_image_children()
    _create_tasks()
    _create_metadefs()
    _create_cache_tables()
