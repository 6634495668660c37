"""Fixtures of the unit tests that use a real SQLite file."""

import shutil

import pytest

from glance.db import api as db_api
from tests.conftest import sync_database


@pytest.fixture(scope='module')
def synced_template(tmp_path_factory):
    """A SQLite file migrated once per module (copied per test)."""
    path = tmp_path_factory.mktemp('template') / 'glance.sqlite'
    sync_database(f'sqlite:///{path}')
    return path


@pytest.fixture
def sqlite_db(synced_template, tmp_path, conf):
    """A SQLite file at our head that glance.db.api uses for the test."""
    path = tmp_path / 'glance.sqlite'
    shutil.copyfile(synced_template, path)
    url = f'sqlite:///{path}'
    db_api.dispose()
    conf.set('connection', url, group='database')
    yield url
    db_api.dispose()
