"""Fixtures for tests that run glance.db.api in-process against each
kind of database (SQLite, MariaDB, PostgreSQL)."""

import pytest
import sqlalchemy

from glance.common import config
from glance.db import api as db_api
from glance.db import migration
from tests.scratch_databases import scratch_database

KINDS = ['sqlite', 'mariadb', 'postgresql']


@pytest.fixture(scope='module')
def migrated_databases(db_servers, tmp_path_factory):
    """kind -> URL of a database migrated once for this module (tests use
    an image of their own, so they can share it)."""
    urls, drops = {}, []
    tmp_dir = tmp_path_factory.mktemp('db')

    def get(kind):
        if kind not in urls:
            url, drop = scratch_database(kind, db_servers, tmp_dir)
            drops.append(drop)
            engine = sqlalchemy.create_engine(
                url, poolclass=sqlalchemy.pool.NullPool)
            try:
                migration.upgrade(engine=engine)
            finally:
                engine.dispose()
            urls[kind] = url
        return urls[kind]

    yield get
    db_api.dispose()
    for drop in drops:
        drop()


@pytest.fixture(params=KINDS)
def glance_db(request, migrated_databases):
    """glance.db.api configured to use a migrated database of each kind."""
    url = migrated_databases(request.param)
    config.parse_args([], 'glance-api', default_config_files=[])
    db_api.dispose()
    config.CONF.set_override('connection', url, group='database')
    try:
        migration.upgrade()  # a no-op once migrated
        yield request.param
    finally:
        db_api.dispose()
        config.CONF.clear_override('connection', group='database')
