"""Schema versions: our alembic chain, applied to the configured database.

A database made by upstream Glance is adopted: at upstream's 2024.1 head
its schema is our first revision plus ``image_locations.status``; once the
schema is verified against our models, our first revision is stamped in
place of upstream's and our chain runs from there.
"""

import os

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import autogenerate
from alembic import migration as alembic_migration
from alembic import script as alembic_script
from alembic.script.revision import RevisionError
from alembic.util import exc as alembic_exc

from glance.common import exception
from glance.db import api as db_api
from glance.db import models

# Upstream Glance's alembic revisions (glance/db/sqlalchemy/
# alembic_migrations): the head we can adopt, and older ones we recognise.
UPSTREAM_HEAD = '2024_1_contract01'
UPSTREAM_REVISIONS = {
    'liberty', 'mitaka01', 'mitaka02', 'ocata01', 'pike01',
    *('%s_%s01' % (release, phase)
      for release in ('ocata', 'pike', 'queens', 'rocky', 'train', 'ussuri',
                      'wallaby', 'xena', 'yoga', 'zed', '2023_1', '2024_1')
      for phase in ('expand', 'contract')),
    'rocky_expand02', 'rocky_contract02'}
# Where an upstream schema at UPSTREAM_HEAD stands in our chain.
ADOPTED_AS = '2024_1_schema01'
# What our chain adds that an adopted database lacks until it runs.
OUR_ADDITIONS = {('add_index', 'ix_image_locations_status_image_id'),
                 ('add_table', 'image_location_claims')}


class ForeignSchema(exception.GlanceError):
    message = ('The database was made by upstream Glance at revision '
               '%(revision)s and cannot be adopted: %(reason)s')

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), 'migrations')


def _config(connection=None):
    config = alembic_config.Config()
    config.set_main_option('script_location', MIGRATIONS_DIR)
    config.attributes['connection'] = connection
    return config


def _scripts():
    return alembic_script.ScriptDirectory.from_config(_config())


def head():
    """The revision a fully migrated database is at."""
    return _scripts().get_current_head()


def current_revisions(engine=None):
    """Revisions recorded in the database; empty if it was never synced."""
    engine = engine or db_api.get_engine()
    with engine.connect() as conn:
        return alembic_migration.MigrationContext.configure(
            conn).get_current_heads()


def pending_revisions(engine=None):
    """Revisions between the database's and the head, oldest first (an
    adoptable upstream database counts as at the revision it is adopted
    as)."""
    current = current_revisions(engine)
    if tuple(current) == (UPSTREAM_HEAD,):
        current = (ADOPTED_AS,)
    try:
        steps = list(_scripts().iterate_revisions('heads',
                                                  current or 'base'))
    except (alembic_exc.CommandError, RevisionError) as e:
        raise exception.UnknownRevision(revision=','.join(current)) from e
    return [s.revision for s in reversed(steps)]


def _differences(conn):
    """Differences between the database and our models that matter."""
    found = []
    for diff in autogenerate.compare_metadata(
            alembic_migration.MigrationContext.configure(conn),
            models.Base.metadata):
        if isinstance(diff, list):  # column changes come grouped
            diff = diff[0]
        kind, subject = diff[0], diff[1]
        if (kind, getattr(subject, 'name', None)) in OUR_ADDITIONS:
            continue
        if kind == 'modify_type' and _same_integer_on_sqlite(conn, diff):
            continue
        found.append(diff)
    return found


def _same_integer_on_sqlite(conn, diff):
    # SQLite stores INTEGER and BIGINT alike (upstream's batch migrations
    # turned BIGINT columns into INTEGER there).
    return (conn.dialect.name == 'sqlite'
            and {type(diff[-2]).__name__.upper(),
                 type(diff[-1]).__name__.upper()} <= {'INTEGER', 'BIGINTEGER',
                                                      'BIGINT'})


def _adopt_upstream(engine, current):
    """Stamp an upstream database at our matching revision, or refuse."""
    revision = ','.join(current)
    if tuple(current) != (UPSTREAM_HEAD,):
        raise ForeignSchema(revision=revision, reason='finish upgrading it '
                            'with upstream glance-manage to %s first'
                            % UPSTREAM_HEAD)
    with engine.connect() as conn:
        differences = _differences(conn)
    if differences:
        raise ForeignSchema(revision=revision, reason='its schema differs '
                            'from upstream 2024.1: %s' % (differences[0],))
    with engine.connect() as conn:
        alembic_command.stamp(_config(conn), ADOPTED_AS, purge=True)
        conn.commit()


def upgrade(revision='heads', engine=None):
    """Bring the schema up to ``revision``; a no-op when already there.

    An upstream Glance database is adopted first; one at a revision
    neither we nor upstream know is refused untouched.
    """
    engine = engine or db_api.get_engine()
    if revision not in ('heads', 'head'):
        _known_revision(revision)
    current = current_revisions(engine)
    if any(r in UPSTREAM_REVISIONS for r in current):
        _adopt_upstream(engine, current)
    else:
        pending_revisions(engine)  # refuses a revision nobody knows
    try:
        with engine.connect() as conn:
            alembic_command.upgrade(_config(conn), revision)
            conn.commit()
    except alembic_exc.CommandError as e:
        current = ','.join(current_revisions(engine)) or 'base'
        raise exception.UnknownRevision(revision=current) from e
    if engine.dialect.name == 'sqlite':
        # Readers then never wait for the one writer; the mode is stored
        # in the file, so it is set once, here.
        # (outside a transaction, which SQLite requires for this pragma)
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute('PRAGMA journal_mode = WAL')
        finally:
            raw.close()


def _known_revision(revision):
    try:
        if _scripts().get_revision(revision) is None:
            raise exception.UnknownRevision(revision=revision)
    except alembic_exc.CommandError as e:
        raise exception.UnknownRevision(revision=revision) from e
