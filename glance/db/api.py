"""The DB API: the only module that issues SQL.

Sessions come from oslo.db's enginefacade; writers are retried on deadlock
by oslo.db. On SQLite, several worker processes share one file, so a write
transaction takes the write lock when it begins (``BEGIN IMMEDIATE``) and
waits for it (busy timeout) instead of failing half way with "database is
locked"; WAL (set by ``glance-manage db sync``, it stays with the file)
lets readers go on while one writer works.
"""

import contextlib
import contextvars
import threading

import sqlalchemy
from oslo_config import cfg
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from oslo_db.sqlalchemy import utils as db_utils
from sqlalchemy import exc as sa_exc
from sqlalchemy import sql
from sqlalchemy.ext import compiler as sa_compiler
from sqlalchemy.sql import visitors

from glance.common import exception
from glance.common.utils import utcnow
from glance.db import models
from glance import domain

CONF = cfg.CONF

SQLITE_BUSY_TIMEOUT_MS = 60000

_facade = None
_facade_lock = threading.Lock()
_writing = contextvars.ContextVar('glance_db_writing', default=False)

retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=50, retry_interval=0.1, inc_retry_interval=True,
    retry_on_deadlock=True)


class _Scope:
    """The object enginefacade hangs one transaction's state on."""


def _facade_or_start(fail_fast=False, min_pool_size=None):
    global _facade
    with _facade_lock:
        if _facade is None:
            facade = enginefacade.transaction_context()
            if fail_fast:
                facade.configure(max_retries=1, retry_interval=0)
            if min_pool_size and min_pool_size > (
                    CONF.database.max_pool_size or 0):
                facade.configure(max_pool_size=min_pool_size)
            engine = _start_engine(facade)
            if engine.dialect.name == 'sqlite':
                _tune_sqlite(engine)
                _pool_sqlite(engine, min_pool_size)
            _facade = facade
    return _facade


def _start_engine(facade):
    if not CONF.database.connection:
        raise exception.BadDatabaseURL(url=None, reason='it is not set')
    try:
        return facade.writer.get_engine()
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError,
            ValueError) as e:
        raise exception.BadDatabaseURL(url=CONF.database.connection,
                                       reason=_first_line(e))
    except (db_exc.DBConnectionError, db_exc.DBError,
            sa_exc.OperationalError) as e:
        raise exception.DatabaseUnavailable(reason=_first_line(e))


def _first_line(error):
    text = str(getattr(error, 'inner_exception', None) or error)
    return text.strip().splitlines()[0] if text.strip() else repr(error)


def _tune_sqlite(engine):
    @sqlalchemy.event.listens_for(engine, 'connect')
    def _on_connect(dbapi_con, record):
        dbapi_con.execute('PRAGMA busy_timeout = %d' % SQLITE_BUSY_TIMEOUT_MS)

    # oslo.db emits a plain BEGIN for every SQLite transaction; ours takes
    # the write lock up front for writers, so replace its listener.
    for listener in list(engine.dispatch.begin):
        if listener.__name__ == '_sqlite_emit_begin':
            sqlalchemy.event.remove(engine, 'begin', listener)

    @sqlalchemy.event.listens_for(engine, 'begin')
    def _on_begin(conn):
        if 'in_transaction' not in conn.info:
            verb = 'BEGIN IMMEDIATE' if _writing.get() else 'BEGIN'
            conn.exec_driver_sql(verb)
            conn.info['in_transaction'] = True


def _pool_sqlite(engine, min_pool_size=None):
    # oslo.db gives a SQLite file a NullPool: every transaction opened a new
    # connection, on whose first statement SQLite parsed the whole schema
    # again (a third of an image show), and closing the last one made SQLite
    # checkpoint the WAL. The pool keeps up to [database] max_pool_size
    # connections, or min_pool_size if larger, as other databases' pools
    # do; threads beyond that still get one each (SQLite has no connection
    # limit to protect). pysqlite lets a file connection move between
    # threads, and the pool lends each to one thread at a time.
    # (SQLAlchemy itself replaces an engine's pool this way on dispose().)
    null_pool = engine.pool
    engine.pool = sqlalchemy.pool.QueuePool(
        null_pool._creator,
        pool_size=max(CONF.database.max_pool_size or 5, min_pool_size or 0),
        max_overflow=-1, recycle=null_pool._recycle,
        pre_ping=null_pool._pre_ping, _dispatch=null_pool.dispatch,
        dialect=null_pool._dialect)


def connect(fail_fast=False, min_pool_size=None):
    """Open the configured database once, raising a GlanceError if it can't.

    ``fail_fast`` makes one connection attempt instead of oslo.db's
    configured retries (for command-line tools); ``min_pool_size`` keeps
    that many connections open for as many concurrent users.
    """
    engine = _facade_or_start(fail_fast, min_pool_size).writer.get_engine()
    try:
        with engine.connect():
            pass
    except sa_exc.DBAPIError as e:
        raise exception.DatabaseUnavailable(reason=_first_line(e))
    return engine


def get_engine():
    return _facade_or_start().writer.get_engine()


def dispose():
    """Forget the engine (after a fork, or when the configuration changes)."""
    global _facade
    with _facade_lock:
        if _facade is not None:
            _facade.writer.get_engine().dispose()
        _facade = None


@contextlib.contextmanager
def reader():
    with _facade_or_start().reader.using(_Scope()) as session:
        yield session


@contextlib.contextmanager
def _core_reader():
    """A read transaction on a bare Connection, for statements that need
    no ORM: a Session around it costs a fifth of an image show."""
    with _facade_or_start().reader.connection.using(_Scope()) as conn:
        yield conn


@contextlib.contextmanager
def writer():
    token = _writing.set(True)
    try:
        with _facade_or_start().writer.using(_Scope()) as session:
            yield session
    finally:
        _writing.reset(token)


# --- images ---------------------------------------------------------------

IMAGE_COLUMNS = ('id', 'name', 'status', 'visibility', 'protected',
                 'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value',
                 'owner', 'size', 'virtual_size', 'container_format',
                 'disk_format', 'created_at', 'updated_at', 'min_ram',
                 'min_disk')
# A list filter on these compares the images column itself.
COLUMN_FILTERS = frozenset({'name', 'id', 'status', 'container_format',
                            'disk_format', 'owner', 'checksum',
                            'os_hash_value', 'os_hash_algo', 'min_ram',
                            'min_disk', 'size', 'virtual_size',
                            'visibility', 'protected', 'os_hidden',
                            'created_at', 'updated_at'})


# The tables, for statements that need no ORM (the read path, below).
_IMAGES = models.Image.__table__
_MEMBERS = models.ImageMember.__table__
_PROPERTIES = models.ImageProperty.__table__
_TAGS = models.ImageTag.__table__
_LOCATIONS = models.ImageLocation.__table__


def _row_values(row, columns):
    return {c: getattr(row, c) for c in columns}


def _visible_clause(context, member_status):
    """Images ``context`` may see: its own, public, community, and shared
    with its project (membership in ``member_status`` unless 'any')."""
    if context.is_admin:
        return sql.true()
    return _visible_to(context.project_id, member_status)


def _visible_to(project, member_status):
    """What _visible_clause allows a project (a value or a bindparam)."""
    image, member = _IMAGES.c, _MEMBERS.c
    membership = sql.exists().where(
        member.image_id == image.id,
        member.member == project,
        member.deleted == sql.false())
    if member_status != 'any':
        membership = membership.where(member.status == member_status)
    return sql.or_(image.owner == project,
                   image.owner.is_(None),
                   image.visibility.in_(('public', 'community')),
                   sql.and_(image.visibility == 'shared', membership))


# The read path in plain SQL expressions over the tables, built once:
# building a statement, and the ORM's work on one, cost more than SQLite
# takes to run it.
_IMAGE_IDS = sql.bindparam('image_ids', expanding=True)
_PROPERTIES_OF = sql.select(
    _PROPERTIES.c.image_id, _PROPERTIES.c.name, _PROPERTIES.c.value).where(
    _PROPERTIES.c.image_id.in_(_IMAGE_IDS),
    _PROPERTIES.c.deleted == sql.false())
_TAGS_OF = sql.select(_TAGS.c.image_id, _TAGS.c.value).where(
    _TAGS.c.image_id.in_(_IMAGE_IDS),
    _TAGS.c.deleted == sql.false()).order_by(_TAGS.c.id)
_ACTIVE_LOCATIONS_OF = sql.select(
    _LOCATIONS.c.image_id, _LOCATIONS.c.id, _LOCATIONS.c.value,
    _LOCATIONS.c.meta_data, _LOCATIONS.c.status).where(
    _LOCATIONS.c.image_id.in_(_IMAGE_IDS),
    _LOCATIONS.c.status == 'active',
    _LOCATIONS.c.deleted == sql.false()).order_by(_LOCATIONS.c.id)
_UNDELETED_IMAGE = sql.select(
    *(_IMAGES.c[name] for name in IMAGE_COLUMNS)).where(
    _IMAGES.c.id == sql.bindparam('id'), _IMAGES.c.deleted == sql.false())
_VISIBLE_IMAGE = _UNDELETED_IMAGE.where(
    _visible_to(sql.bindparam('project_id'), 'any'))


def _children(conn, image_ids):
    """Undeleted properties, tags and locations of the given images."""
    found = {i: {'properties': {}, 'tags': [], 'locations': []}
             for i in image_ids}
    if not image_ids:
        return found
    ids = {'image_ids': image_ids}
    # All rows fetched at once and unpacked as tuples: a list reads
    # hundreds of them.
    for image_id, name, value in conn.execute(_PROPERTIES_OF, ids).all():
        found[image_id]['properties'][name] = value
    for image_id, value in conn.execute(_TAGS_OF, ids).all():
        found[image_id]['tags'].append(value)
    for image_id, loc_id, url, metadata, status in conn.execute(
            _ACTIVE_LOCATIONS_OF, ids).all():
        found[image_id]['locations'].append(
            {'id': loc_id, 'url': url, 'metadata': metadata or {},
             'status': status})
    return found


def _image_dicts(conn, rows):
    """Image dicts from rows of the IMAGE_COLUMNS, in that order."""
    children = _children(conn, [row.id for row in rows])
    return [dict(zip(IMAGE_COLUMNS, row), **children[row.id])
            for row in rows]


def image_get(context, image_id):
    """The undeleted image ``context`` may see, as a dict with
    ``properties``, ``tags`` and ``locations``; ImageNotFound otherwise."""
    if context.is_admin:
        query, params = _UNDELETED_IMAGE, {'id': image_id}
    else:
        query, params = _VISIBLE_IMAGE, {'id': image_id,
                                         'project_id': context.project_id}
    with _core_reader() as conn:
        row = conn.execute(query, params).one_or_none()
        if row is None:
            raise exception.ImageNotFound(image_id=image_id)
        return _image_dicts(conn, [row])[0]


def image_status(image_id):
    """The status of an undeleted image, None if it is deleted or gone."""
    with _core_reader() as conn:
        return conn.execute(sql.select(_IMAGES.c.status).where(
            _IMAGES.c.id == image_id,
            _IMAGES.c.deleted == sql.false())).scalar_one_or_none()


class _MostRowsMatch(sql.expression.ColumnElement):
    """A condition most rows meet, marked so for SQLite's planner.

    SQLite keeps no statistics unless ANALYZE runs, and guesses that an
    equality on an indexed column picks few rows. A list then read every
    image through the os_hidden index and sorted them all, rather than walk
    the created_at index and stop at the end of the page. ``likely()``
    corrects the guess; other databases have statistics and get the bare
    condition.
    """

    inherit_cache = True
    _traverse_internals = [
        ('condition', visitors.InternalTraversal.dp_clauseelement)]

    def __init__(self, condition):
        self.condition = condition


@sa_compiler.compiles(_MostRowsMatch)
def _compile_most_rows_match(element, compiler, **kw):
    return compiler.process(element.condition, **kw)


@sa_compiler.compiles(_MostRowsMatch, 'sqlite')
def _compile_most_rows_match_sqlite(element, compiler, **kw):
    return 'likely(%s)' % compiler.process(element.condition, **kw)


def _filter_clause(name, value):
    """One list filter as a SQL condition; ``value`` is already parsed by
    the API layer into (operator, operand)."""
    op, operand = value
    if name in COLUMN_FILTERS:
        column = _IMAGES.c[name]
    elif name.endswith(('_min', '_max')) and name[:-4] in COLUMN_FILTERS:
        column = _IMAGES.c[name[:-4]]
        op = 'gte' if name.endswith('_min') else 'lte'
    else:
        prop = _PROPERTIES.c
        return _IMAGES.c.id.in_(sql.select(prop.image_id).where(
            prop.name == name, _MostRowsMatch(prop.deleted == sql.false()),
            _compare(prop.value, op, operand)))
    return _compare(column, op, operand)


def _compare(column, op, operand):
    if op == 'in':
        return column.in_(operand)
    return {'eq': column.__eq__, 'neq': column.__ne__, 'gt': column.__gt__,
            'gte': column.__ge__, 'lt': column.__lt__,
            'lte': column.__le__}[op](operand)


def image_list(context, filters=None, tags=(), visibility=None,
               member_status='accepted', marker=None, limit=None,
               sort_keys=('created_at',), sort_dirs=('desc',)):
    """A page of the images ``context`` sees, as dicts (see image_get).

    ``filters`` maps a column, ``<column>_min/_max`` or a property name to
    ``(operator, operand)``; ``visibility`` None hides other projects'
    community images, 'all' hides nothing. ``marker`` is the id of the last
    image of the previous page (ImageNotFound if not visible).
    """
    # Core columns, not the model's attributes: each comparison through the
    # ORM costs several times more to build.
    image, tag = _IMAGES.c, _TAGS.c
    query = sql.select(*(image[name] for name in IMAGE_COLUMNS)).where(
        _MostRowsMatch(image.deleted == sql.false()),
        image.status != 'killed',
        _visible_clause(context, member_status if (
            visibility in (None, 'shared', 'all')) else 'any'))
    if visibility is None:
        query = query.where(sql.or_(image.visibility != 'community',
                                    image.owner == context.project_id))
    elif visibility != 'all':
        query = query.where(image.visibility == visibility)
    for name, value in (filters or {}).items():
        condition = _filter_clause(name, value)
        if name == 'os_hidden':  # indexed; most images are not hidden
            condition = _MostRowsMatch(condition)
        query = query.where(condition)
    for value in tags:
        query = query.where(sql.exists().where(
            tag.image_id == image.id, tag.value == value,
            tag.deleted == sql.false()))
    keys, dirs = list(sort_keys), list(sort_dirs)
    for tie_breaker in ('created_at', 'id'):
        if tie_breaker not in keys:
            keys.append(tie_breaker)
            dirs.append(dirs[-1] if dirs else 'desc')
    with _core_reader() as conn:
        marker_row = None
        if marker is not None:
            marker_row = conn.execute(
                query.where(image.id == marker)).one_or_none()
            if marker_row is None:
                raise exception.ImageNotFound(image_id=marker)
        # oslo.db's keyset pagination takes a Core select as well as an
        # ORM query (it only orders, filters and limits it).
        query = db_utils.paginate_query(query, models.Image, limit, keys,
                                        marker=marker_row, sort_dirs=dirs)
        return _image_dicts(conn, conn.execute(query).all())


@retry_on_deadlock
def image_create(values, properties, tags):
    """Insert an image with its properties and tags; Duplicate if the id was
    ever used (soft-deleted images keep theirs, OSSN-0075)."""
    now = utcnow()
    image_id = values['id']
    try:
        with writer() as session:
            session.execute(sql.insert(models.Image).values(
                created_at=now, updated_at=now, deleted=False, **values))
            _insert_properties(session, image_id, properties, now)
            _insert_tags(session, image_id, tags, now)
    except db_exc.DBDuplicateEntry:
        raise exception.Duplicate('Image ID %s already exists!' % image_id)


def _insert_properties(session, image_id, properties, now):
    if properties:
        session.execute(sql.insert(models.ImageProperty), [
            {'image_id': image_id, 'name': name, 'value': value,
             'created_at': now, 'updated_at': now, 'deleted': False}
            for name, value in properties.items()])


def _insert_tags(session, image_id, tags, now):
    if tags:
        session.execute(sql.insert(models.ImageTag), [
            {'image_id': image_id, 'value': tag, 'created_at': now,
             'updated_at': now, 'deleted': False} for tag in tags])


def _set_properties(session, image_id, properties, now):
    """Update, revive or insert each property: the (image_id, name) key is
    unique even over soft-deleted rows."""
    prop = models.ImageProperty
    missing = {}
    for name, value in properties.items():
        updated = session.execute(sql.update(prop).where(
            prop.image_id == image_id, prop.name == name).values(
            value=value, deleted=False, deleted_at=None, updated_at=now))
        if updated.rowcount == 0:
            missing[name] = value
    _insert_properties(session, image_id, missing, now)


def _soft_delete(session, model, now, *where):
    return session.execute(sql.update(model).where(
        model.deleted == sql.false(), *where).values(
        deleted=True, deleted_at=now, updated_at=now)).rowcount


@oslo_db_api.wrap_db_retry(
    max_retries=10, retry_on_deadlock=True,
    exception_checker=lambda e: isinstance(e, db_exc.DBDuplicateEntry))
def image_update(image_id, values=None, from_state=None, set_properties=None,
                 delete_properties=(), add_tags=(), remove_tags=(),
                 add_locations=(), update_locations=(), max_properties=None,
                 max_tags=None):
    """Apply one change set to an image in one transaction.

    Only the given columns are written (plus ``updated_at``, now unless
    given). With
    ``from_state`` the update happens only if the image is still in that
    status (Conflict otherwise), so two workers can't both move it on.
    ``add_locations`` are ``{'url', 'metadata'}`` dicts; their new ids are
    returned in order. ``update_locations`` are ``{'id', 'metadata'}``
    dicts: new metadata for locations the image has. ``max_properties`` and
    ``max_tags`` are checked on the result inside the transaction (the
    image row is locked by then), so concurrent additions can't pass a quota
    together.
    """
    image = models.Image
    now = utcnow()
    with writer() as session:
        where = [image.id == image_id, image.deleted == sql.false()]
        if from_state is not None:
            where.append(image.status == from_state)
        values = dict(values or {})
        values.setdefault('updated_at', now)
        updated = session.execute(sql.update(image).where(*where).values(
            **values))
        if updated.rowcount == 0:
            _raise_missing_or_conflict(session, image_id, from_state,
                                       values.get('status'))
        _set_properties(session, image_id, set_properties or {}, now)
        if delete_properties:
            _soft_delete(session, models.ImageProperty, now,
                         models.ImageProperty.image_id == image_id,
                         models.ImageProperty.name.in_(delete_properties))
        _insert_tags(session, image_id, add_tags, now)
        if remove_tags:
            _soft_delete(session, models.ImageTag, now,
                         models.ImageTag.image_id == image_id,
                         models.ImageTag.value.in_(remove_tags))
        for loc in update_locations:
            session.execute(sql.update(models.ImageLocation).where(
                models.ImageLocation.id == loc['id'],
                models.ImageLocation.image_id == image_id).values(
                meta_data=loc['metadata'], updated_at=now))
        _check_counts(session, image_id, max_properties, max_tags)
        return [_insert_location(session, image_id, loc, now)
                for loc in add_locations]


def _check_counts(session, image_id, max_properties, max_tags):
    prop, tag = models.ImageProperty, models.ImageTag
    for what, limit, model, counted in (
            ('properties', max_properties, prop,
             ~prop.name.startswith(domain.RESERVED_PREFIX)),
            ('tags', max_tags, tag, sql.true())):
        if limit is None:
            continue
        count = session.execute(sql.select(sql.func.count()).where(
            model.image_id == image_id, model.deleted == sql.false(),
            counted)).scalar()
        if count > limit:
            raise exception.LimitExceeded(
                'The limit has been exceeded on the number of allowed image '
                '%s. Attempted: %d, Maximum: %d' % (what, count, limit))


def _insert_location(session, image_id, location, now):
    result = session.execute(sql.insert(models.ImageLocation).values(
        image_id=image_id, value=location['url'],
        meta_data=location.get('metadata') or {}, status='active',
        created_at=now, updated_at=now, deleted=False))
    return result.inserted_primary_key[0]


def _raise_missing_or_conflict(session, image_id, from_state, new_status):
    current = session.execute(sql.select(models.Image.status).where(
        models.Image.id == image_id,
        models.Image.deleted == sql.false())).scalar_one_or_none()
    if current is None:
        raise exception.ImageNotFound(image_id=image_id)
    raise exception.Conflict(
        'Image status transition from %s to %s is not allowed (wanted '
        'from_state=%s)' % (current, new_status, from_state))


@retry_on_deadlock
def image_destroy(image_id, status):
    """Soft-delete an image and every undeleted row that belongs to it.

    An image with data still waiting for the scrubber ends pending_delete
    whatever ``status`` says: a concurrent delete may have taken its
    locations out of service after this caller looked.
    """
    now = utcnow()
    with writer() as session:
        waiting = session.execute(sql.select(models.ImageLocation.id).where(
            models.ImageLocation.image_id == image_id,
            models.ImageLocation.status == 'pending_delete').limit(1)).first()
        if waiting is not None:
            status = 'pending_delete'
        updated = session.execute(sql.update(models.Image).where(
            models.Image.id == image_id,
            models.Image.deleted == sql.false()).values(
            status=status, deleted=True, deleted_at=now, updated_at=now))
        if updated.rowcount == 0:
            raise exception.ImageNotFound(image_id=image_id)
        for child in (models.ImageProperty, models.ImageTag,
                      models.ImageLocation, models.ImageMember):
            _soft_delete(session, child, now, child.image_id == image_id)


def storage_used(owner, exclude_image_id=None):
    """Bytes of data ``owner``'s undeleted images hold, counting each
    location (a copy in two stores is stored twice)."""
    image, location = models.Image, models.ImageLocation
    with reader() as session:
        total = sql.func.coalesce(sql.func.sum(image.size), 0)
        query = sql.select(total).join(
            location, location.image_id == image.id).where(
            image.owner == owner, image.deleted == sql.false(),
            location.status == 'active', location.deleted == sql.false())
        if exclude_image_id:
            query = query.where(image.id != exclude_image_id)
        return int(session.execute(query).scalar())


# --- locations ------------------------------------------------------------

@retry_on_deadlock
def location_transition(location_id, from_status, to_status,
                        keep_one_active=False):
    """Move a location from ``from_status`` to ``to_status`` if it is still
    there (compare-and-set); True if this call made the move.

    Only the moves of ``domain.LOCATION_TRANSITIONS`` are allowed. A location
    that is not active is soft-deleted (``deleted`` = 1), as upstream keeps
    it. With ``keep_one_active`` the move is refused (Forbidden) if it would
    leave the image without an active location; the image row is locked
    first so two such moves on one image are decided one after the other.
    """
    if to_status not in domain.LOCATION_TRANSITIONS.get(from_status, ()):
        raise exception.Invalid('Location status cannot move from %s to %s.'
                                % (from_status, to_status))
    now = utcnow()
    retired = to_status != 'active'
    with writer() as session:
        if keep_one_active:
            _refuse_last_active_location(session, location_id)
        moved = session.execute(sql.update(models.ImageLocation).where(
            models.ImageLocation.id == location_id,
            models.ImageLocation.status == from_status).values(
            status=to_status, deleted=retired,
            deleted_at=now if retired else None, updated_at=now))
        return moved.rowcount == 1


def _refuse_last_active_location(session, location_id):
    location, image = models.ImageLocation, models.Image
    image_id = session.execute(sql.select(location.image_id).where(
        location.id == location_id)).scalar_one()
    session.execute(sql.update(image).where(image.id == image_id).values(
        updated_at=image.updated_at))
    others = session.execute(sql.select(sql.func.count()).where(
        location.image_id == image_id, location.id != location_id,
        location.status == 'active')).scalar()
    if not others:
        raise exception.Forbidden('Cannot remove last location in the '
                                  'image.')


def pending_delete_locations(deleted_before, limit, stale_claims_before,
                             exclude=(), image_id=None):
    """The scrubber's queue: locations whose data waits to be deleted,
    oldest first, whose image was deleted before ``deleted_before`` (for a
    location removed from a live image: the location itself), that no live
    scrubber has claimed (claims older than ``stale_claims_before`` are
    dead); dicts with ``id``, ``image_id``, ``url`` and ``metadata``."""
    location, image = models.ImageLocation, models.Image
    claim = models.ImageLocationClaim
    since = sql.func.coalesce(image.deleted_at, location.deleted_at)
    with reader() as session:
        query = (
            sql.select(location.id, location.image_id, location.value,
                       location.meta_data)
            .join(image, image.id == location.image_id)
            .outerjoin(claim, claim.location_id == location.id)
            .where(location.status == 'pending_delete',
                   since <= deleted_before,
                   sql.or_(claim.location_id.is_(None),
                           claim.claimed_at < stale_claims_before)))
        if exclude:
            query = query.where(location.id.not_in(exclude))
        if image_id is not None:
            query = query.where(location.image_id == image_id)
        rows = session.execute(
            query.order_by(since, location.id).limit(limit))
        return [{'id': r.id, 'image_id': r.image_id, 'url': r.value,
                 'metadata': r.meta_data or {}} for r in rows]


@retry_on_deadlock
def claim_location(location_id, claimed_by, stale_before):
    """Take the right to delete a pending_delete location's data; False if
    another live scrubber holds it or the location moved on.

    The location row is locked first, so a claim waits for a scrubber that
    is just marking the location deleted, and then sees it deleted.
    """
    claim = models.ImageLocationClaim
    now = utcnow()
    try:
        with writer() as session:
            status = session.execute(
                sql.select(models.ImageLocation.status).where(
                    models.ImageLocation.id == location_id)
                .with_for_update()).scalar_one_or_none()
            if status != 'pending_delete':
                return False
            # Read before deleting: a DELETE of an absent row takes an
            # InnoDB gap lock that deadlocks with other claims' inserts.
            held_since = session.execute(sql.select(claim.claimed_at).where(
                claim.location_id == location_id)).scalar_one_or_none()
            if held_since is not None:
                if held_since >= stale_before:
                    return False
                session.execute(sql.delete(claim).where(
                    claim.location_id == location_id))
            session.execute(sql.insert(claim).values(
                location_id=location_id, claimed_by=claimed_by,
                claimed_at=now))
        return True
    except db_exc.DBDuplicateEntry:
        return False


@retry_on_deadlock
def release_location(location_id, scrubbed):
    """Drop a claim; if ``scrubbed``, the location's data is gone: mark it
    deleted (compare-and-set from pending_delete) in the same transaction."""
    location = models.ImageLocation
    now = utcnow()
    with writer() as session:
        if scrubbed:
            session.execute(sql.update(location).where(
                location.id == location_id,
                location.status == 'pending_delete').values(
                status='deleted', deleted=True, deleted_at=now,
                updated_at=now))
        session.execute(sql.delete(models.ImageLocationClaim).where(
            models.ImageLocationClaim.location_id == location_id))


def _scrubbed():
    """Images pending_delete with no location left waiting."""
    image, location = models.Image, models.ImageLocation
    return sql.and_(image.status == 'pending_delete',
                    ~sql.exists().where(location.image_id == image.id,
                                        location.status == 'pending_delete'))


@retry_on_deadlock
def finish_scrubbed_images(image_ids=None):
    """Mark deleted the pending_delete images (all, or those given) that have
    no location left waiting; returns how many."""
    image = models.Image
    query = sql.update(image).where(_scrubbed())
    if image_ids is not None:
        query = query.where(image.id.in_(image_ids))
    else:
        # Looked for first, so that an idle scrubber daemon's wake-ups
        # take no write lock (all of the database's, on SQLite).
        with reader() as session:
            if session.execute(sql.select(image.id).where(
                    _scrubbed()).limit(1)).first() is None:
                return 0
    with writer() as session:
        return session.execute(query.values(status='deleted')).rowcount


@retry_on_deadlock
def image_restore(image_id):
    """Bring a pending_delete image back: its waiting locations active again,
    and the properties, tags and members deleted with it revived. Returns
    the number of locations restored; NotFound if there is no such image,
    Conflict if it is not pending_delete or has no data left."""
    image = models.Image
    now = utcnow()
    with writer() as session:
        row = session.execute(sql.select(image.status, image.deleted_at).where(
            image.id == image_id)).first()
        if row is None:
            raise exception.ImageNotFound(image_id=image_id)
        if row.status != 'pending_delete':
            raise exception.Conflict(
                'cannot restore the image from %s to active (wanted '
                'from_state=pending_delete)' % row.status)
        location = models.ImageLocation
        claimed = sql.select(models.ImageLocationClaim.location_id)
        revived = session.execute(sql.update(location).where(
            location.image_id == image_id,
            location.status == 'pending_delete',
            location.id.not_in(claimed)).values(
            status='active', deleted=False, deleted_at=None,
            updated_at=now)).rowcount
        if revived == 0:
            raise exception.Conflict('the data of image %s is already '
                                     'deleted or being deleted' % image_id)
        for child in (models.ImageProperty, models.ImageTag,
                      models.ImageMember):
            session.execute(sql.update(child).where(
                child.image_id == image_id, child.deleted == sql.true(),
                child.deleted_at == row.deleted_at).values(
                deleted=False, deleted_at=None, updated_at=now))
        session.execute(sql.update(image).where(
            image.id == image_id, image.status == 'pending_delete').values(
            status='active', deleted=False, deleted_at=None, updated_at=now))
        return revived


# --- tasks ----------------------------------------------------------------

TASK_COLUMNS = ('id', 'type', 'status', 'owner', 'expires_at', 'image_id',
                'request_id', 'user_id', 'created_at', 'updated_at',
                'deleted_at', 'deleted')
TASK_INFO_COLUMNS = ('input', 'result', 'message')


def _task_dict(task, info):
    values = _row_values(task, TASK_COLUMNS)
    values.update(_row_values(info, TASK_INFO_COLUMNS) if info is not None
                  else dict.fromkeys(TASK_INFO_COLUMNS))
    return values


def _task_query(owner):
    """Undeleted tasks with their info, of ``owner`` unless it is None."""
    task, info = models.Task, models.TaskInfo
    query = sql.select(task, info).outerjoin(
        info, info.task_id == task.id).where(task.deleted == sql.false())
    if owner is not None:
        query = query.where(task.owner == owner)
    return query


def _expire_tasks(session, owner):
    """Soft-delete ``owner``'s tasks past their expiry (upstream does this
    whenever a project lists its tasks)."""
    now = utcnow()
    _soft_delete(session, models.Task, now, models.Task.owner == owner,
                 models.Task.expires_at <= now)


@retry_on_deadlock
def task_create(values, info):
    """Insert a task (``values``: tasks columns) and its task_info row
    (``info``: input, result, message)."""
    now = utcnow()
    with writer() as session:
        session.execute(sql.insert(models.Task).values(
            created_at=values.pop('created_at', now),
            updated_at=values.pop('updated_at', now), deleted=False,
            **values))
        session.execute(sql.insert(models.TaskInfo).values(
            task_id=values['id'], **info))


@retry_on_deadlock
def task_update(task_id, from_status, values, info):
    """Move a task on from ``from_status`` (compare-and-set): write its
    columns ``values`` and task_info ``info``; Conflict if another worker
    moved it first, NotFound if it is gone."""
    task = models.Task
    with writer() as session:
        updated = session.execute(sql.update(task).where(
            task.id == task_id, task.status == from_status,
            task.deleted == sql.false()).values(**values))
        if updated.rowcount == 0:
            status = session.execute(sql.select(task.status).where(
                task.id == task_id)).scalar_one_or_none()
            if status is None:
                raise exception.NotFound('Task %s not found.' % task_id)
            raise exception.Conflict('Task %s is %s, not %s.'
                                     % (task_id, status, from_status))
        if info:
            session.execute(sql.update(models.TaskInfo).where(
                models.TaskInfo.task_id == task_id).values(**info))


def task_get(task_id, owner=None):
    """One undeleted task as a dict (columns and info); NotFound unless it
    exists and, if ``owner`` is given, belongs to it."""
    with reader() as session:
        row = session.execute(_task_query(None).where(
            models.Task.id == task_id)).first()
    if row is None:
        raise exception.NotFound('No task found with ID %s.' % task_id)
    if owner is not None and row.Task.owner != owner:
        raise exception.Forbidden('Forbidding request, task %s is not '
                                  'visible.' % task_id)
    return _task_dict(row.Task, row.TaskInfo)


@retry_on_deadlock
def task_list(owner=None, filters=None, marker=None, limit=None,
              sort_key='created_at', sort_dir='desc'):
    """A page of undeleted tasks (of ``owner`` unless None), as dicts;
    ``filters`` maps a tasks column to the value it must equal. NotFound
    for a marker that is not in the list."""
    task = models.Task
    with writer() as session:
        if owner is not None:
            _expire_tasks(session, owner)
        query = session.query(task).filter(task.deleted == sql.false())
        if owner is not None:
            query = query.filter(task.owner == owner)
        for name, value in (filters or {}).items():
            query = query.filter(getattr(task, name) == value)
        marker_row = None
        if marker is not None:
            marker_row = query.filter(task.id == marker).one_or_none()
            if marker_row is None:
                raise exception.NotFound('Task %s not found.' % marker)
        keys = [sort_key] + [k for k in ('created_at', 'id')
                             if k != sort_key]
        query = db_utils.paginate_query(query, task, limit, keys,
                                        marker=marker_row,
                                        sort_dirs=[sort_dir] * len(keys))
        return [_task_dict(row, None) for row in query.all()]


@retry_on_deadlock
def tasks_of_image(image_id, owner=None):
    """The unexpired, undeleted tasks about an image (of ``owner`` unless
    None), oldest first."""
    now = utcnow()
    task = models.Task
    with writer() as session:
        if owner is not None:
            _expire_tasks(session, owner)
        rows = session.execute(_task_query(owner).where(
            task.image_id == image_id,
            sql.or_(task.expires_at.is_(None), task.expires_at >= now))
            .order_by(task.created_at, task.id)).all()
        return [_task_dict(row.Task, row.TaskInfo) for row in rows]


# --- purge ----------------------------------------------------------------

def _waiting_for_scrubber(child):
    """Rows of pending_delete images the scrubber has yet to finish (data
    still queued: locations in pending_delete): restore needs them. Found
    once per statement from the locations' (status, image_id) index, not
    by looking up every row's image."""
    queued = sql.select(_LOCATIONS.c.image_id).join(
        _IMAGES, _IMAGES.c.id == _LOCATIONS.c.image_id).where(
        _LOCATIONS.c.status == 'pending_delete',
        _IMAGES.c.status == 'pending_delete')
    return child.image_id.in_(queued)


def _purge_target(table, cutoff):
    """(key column, condition) of the rows of ``table`` a purge with this
    cut-off may remove: soft-deleted before it, and nothing the scrubber
    still needs."""
    if table == 'task_info':
        return models.TaskInfo.task_id, models.TaskInfo.task_id.in_(
            sql.select(models.Task.id).where(
                models.Task.deleted == sql.true(),
                models.Task.deleted_at < cutoff))
    model = PURGE_MODELS[table]
    key = model.__table__.primary_key.columns.values()[0]
    condition = sql.and_(model.deleted == sql.true(),
                         model.deleted_at < cutoff)
    if table == 'images':
        condition = sql.and_(condition, model.status != 'pending_delete', *(
            ~sql.exists().where(child.image_id == model.id)
            for child in (models.ImageProperty, models.ImageTag,
                          models.ImageLocation, models.ImageMember)))
    elif table != 'tasks':
        condition = sql.and_(condition, ~_waiting_for_scrubber(model))
        if table == 'image_locations':
            condition = sql.and_(condition, model.status != 'pending_delete')
    return key, condition


PURGE_MODELS = {'image_properties': models.ImageProperty,
                'image_tags': models.ImageTag,
                'image_locations': models.ImageLocation,
                'image_members': models.ImageMember,
                'tasks': models.Task, 'task_info': models.TaskInfo,
                'images': models.Image}
# SQLite's page cache for a purge: a batch rewrites index pages all over
# the table (image_id order is not key order), and the default 2 MB cache
# would spill and re-read them many times over.
PURGE_SQLITE_CACHE_KIB = 65536


def _soft_deleted(table):
    """The rows of ``table`` a purge looks at, found from an index alone
    (the purge condition proper needs every row read)."""
    if table == 'task_info':
        return sql.true()
    return PURGE_MODELS[table].deleted == sql.true()


def _batch_end(session, key, where, limit):
    """The key of the ``limit``-th row matching ``where`` in key order, or
    of the last one if there are fewer; None if there is none."""
    end = session.execute(sql.select(key).where(where).order_by(key)
                          .offset(limit - 1).limit(1)).scalar()
    if end is None:
        end = session.execute(sql.select(sql.func.max(key)).where(
            where)).scalar()
    return end


def _purge_pragmas(dbapi_con, record):
    dbapi_con.execute('PRAGMA cache_size = -%d' % PURGE_SQLITE_CACHE_KIB)
    dbapi_con.execute('PRAGMA synchronous = NORMAL')


def tune_for_purge():
    """Set up this process's SQLite connections for a long purge: a big
    page cache, and commits that don't wait for an fsync. The database is
    in WAL mode, so a crash can only lose the last batches (the next purge
    removes those rows again); it never damages the file."""
    engine = get_engine()
    if engine.dialect.name != 'sqlite' or sqlalchemy.event.contains(
            engine, 'connect', _purge_pragmas):
        return
    sqlalchemy.event.listen(engine, 'connect', _purge_pragmas)
    # Connections opened before this don't have the settings.
    engine.dispose()


@retry_on_deadlock
def purge_batch(table, cutoff, limit, after=None, exact=False):
    """Hard-delete, in one short transaction, the purgeable rows among the
    next ``limit`` soft-deleted rows of ``table`` whose key is above
    ``after`` (with ``exact``, the next ``limit`` purgeable rows: a slower
    search, for when no more may go). Returns how many it deleted and the
    last key covered, where the next batch starts (no batch rescans what
    earlier ones left), or None once no soft-deleted row is left."""
    key, condition = _purge_target(table, cutoff)
    window = condition if exact else _soft_deleted(table)
    if after is not None:
        window = sql.and_(window, key > after)
    with writer() as session:
        end = _batch_end(session, key, window, limit)
        if end is None:
            return 0, None
        batch = sql.and_(condition, key <= end)
        if after is not None:
            batch = sql.and_(batch, key > after)
        if table == 'image_locations':
            # Looked up from each claim (few): an IN (batch) would
            # evaluate the whole batch's condition once more.
            claim = models.ImageLocationClaim
            session.execute(sql.delete(claim).where(sql.exists().where(
                key == claim.location_id, batch)))
        deleted = session.execute(sql.delete(key.table).where(batch))
        return deleted.rowcount, end


def purge_count(table, cutoff, limit=None):
    """How many rows of ``table`` a purge would remove (at most
    ``limit``)."""
    key, condition = _purge_target(table, cutoff)
    query = sql.select(key).where(condition)
    if limit is not None:
        query = query.limit(limit)
    with reader() as session:
        return session.execute(sql.select(sql.func.count()).select_from(
            query.subquery())).scalar()


# --- members --------------------------------------------------------------

MEMBER_COLUMNS = ('id', 'image_id', 'member', 'status', 'created_at',
                  'updated_at')


def member_list(image_id, member=None):
    """Undeleted memberships of an image (of one project if ``member``)."""
    model = models.ImageMember
    with reader() as session:
        query = sql.select(model).where(model.image_id == image_id,
                                        model.deleted == sql.false())
        if member is not None:
            query = query.where(model.member == member)
        return [_row_values(row, MEMBER_COLUMNS) for row in
                session.execute(query.order_by(model.id)).scalars()]


@retry_on_deadlock
def member_create(image_id, member, status):
    now = utcnow()
    with writer() as session:
        result = session.execute(sql.insert(models.ImageMember).values(
            image_id=image_id, member=member, status=status, can_share=False,
            created_at=now, updated_at=now, deleted=False))
        return result.inserted_primary_key[0]


@retry_on_deadlock
def member_update(member_row_id, status):
    now = utcnow()
    with writer() as session:
        session.execute(sql.update(models.ImageMember).where(
            models.ImageMember.id == member_row_id).values(
            status=status, updated_at=now))
    return now


@retry_on_deadlock
def member_delete(member_row_id):
    with writer() as session:
        _soft_delete(session, models.ImageMember, utcnow(),
                     models.ImageMember.id == member_row_id)
