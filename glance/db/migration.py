"""Schema versions: our alembic chain, applied to the configured database."""

import os

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script
from alembic.util import exc as alembic_exc

from glance.common import exception
from glance.db import api as db_api

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
    """Revisions between the database's and the head, oldest first."""
    current = current_revisions(engine)
    scripts = _scripts()
    try:
        steps = list(scripts.iterate_revisions('heads', current or 'base'))
    except alembic_exc.CommandError as e:
        raise exception.UnknownRevision(revision=','.join(current)) from e
    return [s.revision for s in reversed(steps)]


def upgrade(revision='heads', engine=None):
    """Bring the schema up to ``revision``; a no-op when already there."""
    engine = engine or db_api.get_engine()
    if revision not in ('heads', 'head'):
        _known_revision(revision)
    try:
        with engine.connect() as conn:
            alembic_command.upgrade(_config(conn), revision)
            conn.commit()
    except alembic_exc.CommandError as e:
        current = ','.join(current_revisions(engine)) or 'base'
        raise exception.UnknownRevision(revision=current) from e


def _known_revision(revision):
    try:
        if _scripts().get_revision(revision) is None:
            raise exception.UnknownRevision(revision=revision)
    except alembic_exc.CommandError as e:
        raise exception.UnknownRevision(revision=revision) from e
