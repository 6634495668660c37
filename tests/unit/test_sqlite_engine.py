"""How glance.db.api uses a SQLite file, on a real one.

oslo.db hands SQLite a new connection per transaction; ours are pooled,
and a pooled connection must not carry one transaction's state into the
next. SQLite's planner has no statistics, so the list query tells it which
conditions most images meet, for a page to be read off the created_at
index instead of sorting every image, and a property filter starts from the
matching properties instead of probing every image.
"""

import uuid

import pytest
import sqlalchemy
from oslo_db import exception as db_exc
from sqlalchemy import sql

from glance import context
from glance.db import api as db_api
from glance.db import models

ADMIN = context.RequestContext(project_id='p1', roles=['admin'],
                               is_admin=True)


def new_image(name='sqlite'):
    image_id = str(uuid.uuid4())
    db_api.image_create(
        {'id': image_id, 'name': name, 'status': 'active',
         'visibility': 'private', 'protected': False, 'os_hidden': False,
         'owner': 'p1', 'min_disk': 0, 'min_ram': 0, 'disk_format': 'raw',
         'container_format': 'bare', 'size': 3}, {}, [])
    return image_id


def statements(engine):
    """Every statement the engine sends from now on."""
    sent = []
    sqlalchemy.event.listen(
        engine, 'before_cursor_execute',
        lambda conn, cursor, statement, params, *_: sent.append(
            (statement, params)))
    return sent


def test_transactions_reuse_pooled_connections(sqlite_db):
    image_id = new_image()
    engine = db_api.get_engine()
    opened = []
    sqlalchemy.event.listen(engine, 'connect', lambda *_: opened.append(1))
    for _ in range(20):
        db_api.image_get(ADMIN, image_id)
        db_api.image_update(image_id, {'name': 'renamed'})
    assert opened == []


def test_a_failed_write_leaves_no_transaction_behind(sqlite_db):
    image_id = new_image()
    with pytest.raises(db_exc.DBDuplicateEntry):
        with db_api.writer() as session:
            session.execute(sql.update(models.Image).where(
                models.Image.id == image_id).values(name='lost'))
            session.execute(sql.insert(models.Image).values(
                id=image_id, name='same id', status='queued',
                visibility='private', protected=False, os_hidden=False,
                min_disk=0, min_ram=0, deleted=False))
    sent = statements(db_api.get_engine())
    db_api.image_update(image_id, {'name': 'kept'})
    assert sent[0][0] == 'BEGIN IMMEDIATE'
    assert db_api.image_get(ADMIN, image_id)['name'] == 'kept'


def list_plan(**list_args):
    """SQLite's plan for the images query of one image_list call."""
    engine = db_api.get_engine()
    sent = statements(engine)
    page = db_api.image_list(ADMIN, limit=20, **list_args)
    statement, params = next((s, p) for s, p in sent
                             if s.lstrip().startswith('SELECT images.id'))
    with engine.connect() as conn:
        plan = ' '.join(row[-1] for row in conn.exec_driver_sql(
            'EXPLAIN QUERY PLAN ' + statement, params))
    return page, plan


def test_default_list_walks_the_created_at_index(sqlite_db):
    for n in range(30):
        new_image(f'image {n}')
    page, plan = list_plan(filters={'os_hidden': ('eq', False)})
    assert len(page) == 20
    assert 'created_at_image_idx' in plan
    assert 'os_hidden_image_idx' not in plan
    assert 'ix_images_deleted' not in plan


def test_a_property_filter_starts_from_the_matching_properties(sqlite_db):
    wanted = {new_image(f'image {n}') for n in range(3)}
    for image_id in wanted:
        db_api.image_update(image_id, set_properties={'set': 'wanted'})
    for n in range(10):
        new_image(f'other {n}')
    page, plan = list_plan(filters={'set': ('eq', 'wanted')})
    assert {image['id'] for image in page} == wanted
    # The images are looked up by id from the list of matching properties,
    # not each image checked for a matching property.
    assert 'LIST SUBQUERY' in plan
    assert 'CORRELATED' not in plan
    assert 'ix_image_properties_deleted' not in plan
