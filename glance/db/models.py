"""SQLAlchemy models of upstream Glance's schema (alembic head 2024_1).

Names, types, lengths, nullability, server defaults, indexes and
constraints match upstream so that an operator's existing database and our
migrations describe the same tables. The migration test compares these
models with the migrated schema on SQLite, MariaDB and PostgreSQL.
"""

from oslo_serialization import jsonutils
from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Enum,
                        ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, sql)
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

from glance.common.utils import utcnow

MYSQL_TABLE_ARGS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8'}

Base = declarative_base()


class JSONEncodedDict(TypeDecorator):
    """A dict stored as JSON text (upstream's meta_data/input/result)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else jsonutils.dumps(value)

    def process_result_value(self, value, dialect):
        return None if value is None else jsonutils.loads(value)


def _timestamps():
    return (Column('created_at', DateTime, nullable=False, default=utcnow),
            Column('updated_at', DateTime, nullable=True, default=utcnow,
                   onupdate=utcnow))


class SoftDeleteMixin:
    """The four columns every soft-deleting table carries."""

    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=True, default=utcnow,
                        onupdate=utcnow)
    deleted_at = Column(DateTime, nullable=True)
    deleted = Column(Boolean, nullable=False, default=False)


class Image(SoftDeleteMixin, Base):
    __tablename__ = 'images'
    __table_args__ = (
        Index('checksum_image_idx', 'checksum'),
        Index('ix_images_deleted', 'deleted'),
        Index('owner_image_idx', 'owner'),
        Index('created_at_image_idx', 'created_at'),
        Index('updated_at_image_idx', 'updated_at'),
        Index('visibility_image_idx', 'visibility'),
        Index('os_hidden_image_idx', 'os_hidden'),
        Index('os_hash_value_image_idx', 'os_hash_value'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(String(36), primary_key=True)
    name = Column(String(255))
    disk_format = Column(String(20))
    container_format = Column(String(20))
    size = Column(BigInteger)
    virtual_size = Column(BigInteger)
    status = Column(String(30), nullable=False)
    visibility = Column(Enum('private', 'public', 'shared', 'community',
                             name='image_visibility'),
                        nullable=False, server_default='shared')
    checksum = Column(String(32))
    os_hash_algo = Column(String(64))
    os_hash_value = Column(String(128))
    min_disk = Column(Integer, nullable=False, default=0)
    min_ram = Column(Integer, nullable=False, default=0)
    owner = Column(String(255))
    protected = Column(Boolean, nullable=False, default=False,
                       server_default=sql.expression.false())
    os_hidden = Column(Boolean, nullable=False, default=False,
                       server_default=sql.expression.false())


class ImageProperty(SoftDeleteMixin, Base):
    __tablename__ = 'image_properties'
    __table_args__ = (
        Index('ix_image_properties_image_id', 'image_id'),
        Index('ix_image_properties_deleted', 'deleted'),
        UniqueConstraint('image_id', 'name',
                         name='ix_image_properties_image_id_name'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True, autoincrement=True)
    image_id = Column(String(36), ForeignKey('images.id'), nullable=False)
    name = Column(String(255), nullable=False)
    value = Column(Text)
    image = relationship(Image, backref='properties')


class ImageTag(SoftDeleteMixin, Base):
    __tablename__ = 'image_tags'
    __table_args__ = (
        Index('ix_image_tags_image_id', 'image_id'),
        Index('ix_image_tags_image_id_tag_value', 'image_id', 'value'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True, nullable=False)
    image_id = Column(String(36), ForeignKey('images.id'), nullable=False)
    value = Column(String(255), nullable=False)


class ImageLocation(SoftDeleteMixin, Base):
    __tablename__ = 'image_locations'
    __table_args__ = (
        Index('ix_image_locations_image_id', 'image_id'),
        Index('ix_image_locations_deleted', 'deleted'),
        Index('ix_image_locations_status_image_id', 'status', 'image_id'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True, nullable=False)
    image_id = Column(String(36), ForeignKey('images.id'), nullable=False)
    image = relationship(Image, backref='locations')
    value = Column(Text, nullable=False)
    meta_data = Column(JSONEncodedDict, default={})
    status = Column(String(30), nullable=False, server_default='active')


class ImageMember(SoftDeleteMixin, Base):
    __tablename__ = 'image_members'
    __table_args__ = (
        Index('ix_image_members_deleted', 'deleted'),
        Index('ix_image_members_image_id', 'image_id'),
        Index('ix_image_members_image_id_member', 'image_id', 'member'),
        UniqueConstraint('image_id', 'member', 'deleted_at',
                         name='image_members_image_id_member_deleted_at_key'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True)
    image_id = Column(String(36), ForeignKey('images.id'), nullable=False)
    image = relationship(Image, backref='members')
    member = Column(String(255), nullable=False)
    can_share = Column(Boolean, nullable=False, default=False)
    status = Column(String(20), nullable=False, default='pending',
                    server_default='pending')


class Task(SoftDeleteMixin, Base):
    __tablename__ = 'tasks'
    __table_args__ = (
        Index('ix_tasks_type', 'type'),
        Index('ix_tasks_status', 'status'),
        Index('ix_tasks_owner', 'owner'),
        Index('ix_tasks_deleted', 'deleted'),
        Index('ix_tasks_updated_at', 'updated_at'),
        Index('ix_tasks_image_id', 'image_id'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(String(36), primary_key=True)
    type = Column(String(30), nullable=False)
    status = Column(String(30), nullable=False)
    owner = Column(String(255), nullable=False)
    expires_at = Column(DateTime, nullable=True)
    image_id = Column(String(36), nullable=True)
    request_id = Column(String(64), nullable=True)
    user_id = Column(String(64), nullable=True)


class TaskInfo(Base):
    __tablename__ = 'task_info'
    __table_args__ = (MYSQL_TABLE_ARGS,)

    task_id = Column(String(36), ForeignKey('tasks.id'), primary_key=True,
                     nullable=False)
    task = relationship(Task, backref='info')
    input = Column(JSONEncodedDict)
    result = Column(JSONEncodedDict)
    message = Column(Text)


class MetadefNamespace(Base):
    __tablename__ = 'metadef_namespaces'
    __table_args__ = (
        UniqueConstraint('namespace', name='uq_metadef_namespaces_namespace'),
        Index('ix_metadef_namespaces_owner', 'owner'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True, nullable=False)
    namespace = Column(String(80), nullable=False)
    display_name = Column(String(80))
    description = Column(Text)
    visibility = Column(String(32))
    protected = Column(Boolean)
    owner = Column(String(255), nullable=False)
    created_at, updated_at = _timestamps()


class MetadefResourceType(Base):
    __tablename__ = 'metadef_resource_types'
    __table_args__ = (
        UniqueConstraint('name', name='uq_metadef_resource_types_name'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(Integer, primary_key=True, nullable=False)
    name = Column(String(80), nullable=False)
    protected = Column(Boolean, nullable=False, default=False)
    created_at, updated_at = _timestamps()


class MetadefNamespaceResourceType(Base):
    __tablename__ = 'metadef_namespace_resource_types'
    __table_args__ = (
        Index('ix_metadef_ns_res_types_namespace_id', 'namespace_id'),
        MYSQL_TABLE_ARGS,
    )

    resource_type_id = Column(Integer,
                              ForeignKey('metadef_resource_types.id'),
                              primary_key=True, nullable=False)
    namespace_id = Column(Integer, ForeignKey('metadef_namespaces.id'),
                          primary_key=True, nullable=False)
    properties_target = Column(String(80))
    prefix = Column(String(80))
    created_at, updated_at = _timestamps()


def _metadef_child(class_name, table, extra_columns):
    """Objects, properties and tags share one shape: a named row under a
    namespace, unique per namespace."""
    attrs = {
        '__tablename__': table,
        '__table_args__': (
            UniqueConstraint('namespace_id', 'name',
                             name='uq_%s_namespace_id_name' % table),
            Index('ix_%s_name' % table, 'name'),
            MYSQL_TABLE_ARGS,
        ),
        'id': Column(Integer, primary_key=True, nullable=False),
        'namespace_id': Column(Integer, ForeignKey('metadef_namespaces.id'),
                               nullable=False),
        'name': Column(String(80), nullable=False),
    }
    attrs['created_at'], attrs['updated_at'] = _timestamps()
    attrs.update(extra_columns)
    return type(class_name, (Base,), attrs)


MetadefObject = _metadef_child('MetadefObject', 'metadef_objects', {
    'description': Column(Text),
    'required': Column(Text),
    'json_schema': Column(JSONEncodedDict, default={}, nullable=False),
})
MetadefProperty = _metadef_child('MetadefProperty', 'metadef_properties', {
    'json_schema': Column(JSONEncodedDict, default={}, nullable=False),
})
MetadefTag = _metadef_child('MetadefTag', 'metadef_tags', {})


class NodeReference(Base):
    __tablename__ = 'node_reference'
    __table_args__ = (
        UniqueConstraint('node_reference_url',
                         name='uq_node_reference_node_reference_url'),
        MYSQL_TABLE_ARGS,
    )

    node_reference_id = Column(BigInteger().with_variant(Integer, 'sqlite'),
                               primary_key=True, autoincrement=True)
    node_reference_url = Column(String(255), nullable=False)


class CachedImage(Base):
    __tablename__ = 'cached_images'
    __table_args__ = (
        UniqueConstraint('image_id', 'node_reference_id',
                         name='ix_cached_images_image_id_node_reference_id'),
        MYSQL_TABLE_ARGS,
    )

    id = Column(BigInteger().with_variant(Integer, 'sqlite'),
                primary_key=True, autoincrement=True)
    image_id = Column(String(36), nullable=False)
    last_accessed = Column(DateTime, nullable=False)
    last_modified = Column(DateTime, nullable=False)
    size = Column(BigInteger, nullable=False)
    hits = Column(Integer, nullable=False)
    checksum = Column(String(32), nullable=True)
    node_reference_id = Column(BigInteger().with_variant(Integer, 'sqlite'),
                               ForeignKey('node_reference.node_reference_id'),
                               nullable=False)



class ImageLocationClaim(Base):
    """A scrubber's claim on a pending_delete location (ours, not
    upstream's: see the scrubber_claims01 migration)."""

    __tablename__ = 'image_location_claims'
    __table_args__ = (MYSQL_TABLE_ARGS,)

    location_id = Column(Integer, ForeignKey('image_locations.id'),
                         primary_key=True, autoincrement=False)
    claimed_by = Column(String(255), nullable=False)
    claimed_at = Column(DateTime, nullable=False)
