"""The SQL a save issues through the real chain: only what changed.

Each test configures ``glance.db.api`` in-process against a freshly
migrated database (SQLite, MariaDB, PostgreSQL), creates an image through
the gateway, reads it back with ``repo.get``, changes it and saves it with
``repo.save``, recording every statement the engine sends
(``before_cursor_execute``) and the rows it touched
(``after_cursor_execute``).

Upstream's ``ImageRepo.save`` rewrites every images column and the whole
property set (glance-compat.md §1.4); the distinction layer must send an
``UPDATE images SET <changed columns>, updated_at`` and per-key property
writes, and nothing at all when nothing changed.
"""

import re

import pytest
import sqlalchemy
from sqlalchemy import sql

from glance import context as glance_context
from glance import gateway
from glance.common import config, exception
from glance.db import api as db_api
from glance.db import models

# Properties every test image starts with: a write-everything save would
# touch all of them.
OTHER_PROPS = {f'other_{i:02d}': f'value {i}' for i in range(10)}
WRITE_VERBS = ('INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'MERGE', 'UPSERT')
_SET = re.compile(r'\bSET\s+(.*?)\s+WHERE\b', re.DOTALL | re.IGNORECASE)
_TABLE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+'
                    r'[`"]?(\w+)[`"]?', re.IGNORECASE)


@pytest.fixture
def ctx():
    return glance_context.RequestContext(
        project_id='p1', roles=['admin', 'member', 'reader'], is_admin=True)


class Statement:

    def __init__(self, text, parameters):
        self.text = text
        self.parameters = parameters
        self.rowcount = None

    @property
    def verb(self):
        return self.text.lstrip().split(None, 1)[0].upper()

    @property
    def is_write(self):
        return self.verb in WRITE_VERBS

    @property
    def table(self):
        match = _TABLE.match(self.text)
        return match.group(1).lower() if match else None

    @property
    def set_columns(self):
        """The columns an UPDATE assigns, in order."""
        match = _SET.search(self.text)
        assert match, self.text
        return [re.split(r'\s*=', part.strip(), maxsplit=1)[0].strip('`"')
                for part in _split_top_level(match.group(1))]

    def values(self):
        """Every bound parameter value (flattened over executemany)."""
        params = self.parameters
        rows = params if isinstance(params, list) else [params]
        found = []
        for row in rows:
            if isinstance(row, dict):
                found.extend(row.values())
            elif isinstance(row, (tuple, list)):
                found.extend(row)
            elif row is not None:
                found.append(row)
        return found

    def __repr__(self):
        text = ' '.join(self.text.split())
        return f'<{text} {self.parameters!r} rows={self.rowcount}>'


def _split_top_level(text):
    parts, depth, current = [], 0, ''
    for char in text:
        if char == '(':
            depth += 1
        elif char == ')':
            depth -= 1
        if char == ',' and depth == 0:
            parts.append(current)
            current = ''
        else:
            current += char
    parts.append(current)
    return parts


class Recorder:
    """Statements the DB API's engine sends while recording."""

    def __init__(self, engine):
        self.engine = engine
        self.statements = []
        self.recording = False
        sqlalchemy.event.listen(engine, 'before_cursor_execute', self._before)
        sqlalchemy.event.listen(engine, 'after_cursor_execute', self._after)

    def _before(self, conn, cursor, statement, parameters, context,
                executemany):
        if self.recording:
            self.statements.append(Statement(statement, parameters))

    def _after(self, conn, cursor, statement, parameters, context,
               executemany):
        if self.recording and self.statements:
            self.statements[-1].rowcount = cursor.rowcount

    def __enter__(self):
        self.statements = []
        self.recording = True
        return self

    def __exit__(self, *exc):
        self.recording = False

    def close(self):
        sqlalchemy.event.remove(self.engine, 'before_cursor_execute',
                                self._before)
        sqlalchemy.event.remove(self.engine, 'after_cursor_execute',
                                self._after)

    @property
    def writes(self):
        return [s for s in self.statements if s.is_write]

    def on(self, table):
        return [s for s in self.writes if s.table == table]


@pytest.fixture
def recorder(glance_db):
    recorder = Recorder(db_api.get_engine())
    yield recorder
    recorder.close()


@pytest.fixture
def image_id(glance_db, ctx):
    repo = gateway.image_repo(ctx)
    image = gateway.image_factory().new_image(
        owner='p1', name='x', disk_format='raw', container_format='bare',
        extra_properties=dict(OTHER_PROPS, target='old'), tags={'t1'})
    repo.add(image)
    return image.image_id


def _property_rows(image_id):
    prop = models.ImageProperty
    with db_api.reader() as session:
        rows = session.execute(sql.select(
            prop.name, prop.value, prop.deleted, prop.updated_at,
            prop.deleted_at).where(prop.image_id == image_id)).all()
    return {row.name: row._asdict() for row in rows}


def _image_row(image_id):
    with db_api.reader() as session:
        row = session.execute(sql.select(models.Image).where(
            models.Image.id == image_id)).scalar_one()
        return {c.name: getattr(row, c.name)
                for c in models.Image.__table__.columns}


def _assert_images_update(statement, columns):
    assert statement.verb == 'UPDATE' and statement.table == 'images', (
        statement)
    assert statement.set_columns == columns, statement
    assert statement.rowcount == 1, statement


def _assert_only_key(statements, key):
    """Every statement names ``key`` and no other property."""
    for statement in statements:
        values = statement.values()
        assert key in values, statement
        others = set(OTHER_PROPS) | {'target', 'brand_new'} - {key}
        assert not others & {v for v in values if isinstance(v, str)}, (
            statement)


def _save(ctx, image_id, recorder, change):
    """Read the image through the chain, ``change`` it, save it while
    recording; returns the recorder."""
    repo = gateway.image_repo(ctx)
    image = repo.get(image_id)
    change(image)
    with recorder:
        repo.save(image)
    return recorder


def test_change_one_existing_property(ctx, image_id, recorder):
    before = _property_rows(image_id)

    def change(image):
        image.extra_properties['target'] = 'new'

    writes = _save(ctx, image_id, recorder, change).writes
    assert len(writes) == 2, writes
    _assert_images_update(writes[0], ['updated_at'])
    prop_update = writes[1]
    assert (prop_update.verb, prop_update.table) == (
        'UPDATE', 'image_properties'), prop_update
    assert prop_update.rowcount == 1, prop_update
    _assert_only_key([prop_update], 'target')

    after = _property_rows(image_id)
    assert after['target']['value'] == 'new'
    # No other property row was written (its updated_at is untouched).
    for name in OTHER_PROPS:
        assert after[name] == before[name], name


def test_add_one_new_property(ctx, image_id, recorder):
    """``add /brand_new``: the images row gets only updated_at; the
    property table sees only that key: one INSERT of one row (preceded at
    most by one UPDATE probing for a soft-deleted row to revive)."""
    before = _property_rows(image_id)

    def change(image):
        image.extra_properties['brand_new'] = 'v'

    writes = _save(ctx, image_id, recorder, change).writes
    _assert_images_update(writes[0], ['updated_at'])
    on_props = writes[1:]
    assert all(s.table == 'image_properties' for s in on_props), writes
    inserts = [s for s in on_props if s.verb == 'INSERT']
    updates = [s for s in on_props if s.verb == 'UPDATE']
    assert len(inserts) == 1, writes
    assert len(updates) <= 1, writes
    assert sum(s.rowcount for s in updates) == 0, writes
    assert len(on_props) == len(inserts) + len(updates), writes
    _assert_only_key(on_props, 'brand_new')

    after = _property_rows(image_id)
    assert after['brand_new']['value'] == 'v'
    assert after['brand_new']['deleted'] is False or not after[
        'brand_new']['deleted']
    assert {k: after[k] for k in before} == before


def test_remove_one_property(ctx, image_id, recorder):
    before = _property_rows(image_id)

    def change(image):
        del image.extra_properties['target']

    writes = _save(ctx, image_id, recorder, change).writes
    assert len(writes) == 2, writes
    _assert_images_update(writes[0], ['updated_at'])
    soft_delete = writes[1]
    assert (soft_delete.verb, soft_delete.table) == (
        'UPDATE', 'image_properties'), soft_delete
    assert soft_delete.rowcount == 1
    _assert_only_key([soft_delete], 'target')

    after = _property_rows(image_id)
    assert after['target']['deleted']
    assert after['target']['deleted_at'] is not None
    for name in OTHER_PROPS:
        assert after[name] == before[name], name
    image = gateway.image_repo(ctx).get(image_id)
    assert 'target' not in image.extra_properties


def test_readd_soft_deleted_property_revives_its_row(ctx, image_id,
                                                     recorder):
    repo = gateway.image_repo(ctx)
    image = repo.get(image_id)
    del image.extra_properties['target']
    repo.save(image)

    def change(image):
        image.extra_properties['target'] = 'back'

    writes = _save(ctx, image_id, recorder, change).writes
    assert len(writes) == 2, writes
    _assert_images_update(writes[0], ['updated_at'])
    assert (writes[1].verb, writes[1].table, writes[1].rowcount) == (
        'UPDATE', 'image_properties', 1), writes[1]
    row = _property_rows(image_id)['target']
    assert (row['value'], bool(row['deleted']), row['deleted_at']) == (
        'back', False, None)
    assert gateway.image_repo(ctx).get(image_id).extra_properties[
        'target'] == 'back'


def test_save_without_change_writes_nothing(ctx, image_id, recorder):
    before = _image_row(image_id)
    statements = _save(ctx, image_id, recorder, lambda image: None)
    assert statements.writes == []
    # Not even a transaction is opened for it.
    assert statements.statements == []
    assert _image_row(image_id) == before


def test_reassigning_same_values_writes_nothing(ctx, image_id, recorder):
    def change(image):
        image.name = 'x'
        image.extra_properties['target'] = 'old'
        image.tags = {'t1'}

    assert _save(ctx, image_id, recorder, change).writes == []


def test_name_change_writes_name_and_updated_at_only(ctx, image_id,
                                                     recorder):
    before = _property_rows(image_id)

    def change(image):
        image.name = 'renamed'

    writes = _save(ctx, image_id, recorder, change).writes
    assert len(writes) == 1, writes
    _assert_images_update(writes[0], ['name', 'updated_at'])
    assert _image_row(image_id)['name'] == 'renamed'
    assert _property_rows(image_id) == before


def test_two_columns_change(ctx, image_id, recorder):
    def change(image):
        image.min_ram = 512
        image.os_hidden = True

    writes = _save(ctx, image_id, recorder, change).writes
    assert len(writes) == 1, writes
    assert writes[0].table == 'images'
    assert sorted(writes[0].set_columns) == ['min_ram', 'os_hidden',
                                             'updated_at']


def test_tag_add_and_remove(ctx, image_id, recorder):
    def add(image):
        image.tags.add('t2')

    writes = _save(ctx, image_id, recorder, add).writes
    assert len(writes) == 2, writes
    _assert_images_update(writes[0], ['updated_at'])
    assert (writes[1].verb, writes[1].table) == ('INSERT', 'image_tags')
    assert 't2' in writes[1].values() and 't1' not in writes[1].values()

    def remove(image):
        image.tags.discard('t1')

    writes = _save(ctx, image_id, recorder, remove).writes
    assert len(writes) == 2, writes
    _assert_images_update(writes[0], ['updated_at'])
    assert (writes[1].verb, writes[1].table, writes[1].rowcount) == (
        'UPDATE', 'image_tags', 1)
    assert 't1' in writes[1].values() and 't2' not in writes[1].values()
    assert gateway.image_repo(ctx).get(image_id).tags == {'t2'}


def test_status_change_is_compare_and_set(ctx, image_id, recorder):
    repo = gateway.image_repo(ctx)
    image = repo.get(image_id)
    image.status = 'saving'
    with recorder:
        repo.save(image, from_state='queued')
    writes = recorder.writes
    assert len(writes) == 1, writes
    _assert_images_update(writes[0], ['status', 'updated_at'])
    assert 'queued' in writes[0].values()
    assert re.search(r'\bstatus\s*=', writes[0].text.split('WHERE', 1)[1])
    assert _image_row(image_id)['status'] == 'saving'


def test_stale_from_state_conflicts_and_writes_nothing(ctx, image_id):
    """A change set whose compare-and-set fails is not applied at all, not
    even its property part (one transaction)."""
    repo = gateway.image_repo(ctx)
    stale = repo.get(image_id)
    repo_w = gateway.image_repo(ctx)
    winner = repo_w.get(image_id)
    winner.status = 'saving'
    repo_w.save(winner, from_state='queued')
    before_props = _property_rows(image_id)
    before_row = _image_row(image_id)

    stale.status = 'saving'
    stale.extra_properties['target'] = 'lost'
    stale.name = 'lost'
    with pytest.raises(exception.Conflict):
        repo.save(stale, from_state='queued')
    assert _property_rows(image_id) == before_props
    assert _image_row(image_id) == before_row


def test_stale_readers_keep_each_others_changes(ctx, image_id):
    """The spec's example in-process: two requests read the same image,
    one changes a property, the other another property and the name; both
    changes survive, and the first's are not reverted by the second."""
    repo1, repo2 = gateway.image_repo(ctx), gateway.image_repo(ctx)
    first, second = repo1.get(image_id), repo2.get(image_id)
    first.extra_properties['target'] = 'by first'
    first.tags.add('from-first')
    second.extra_properties['other_03'] = 'by second'
    second.name = 'named by second'
    repo1.save(first)
    repo2.save(second)
    image = gateway.image_repo(ctx).get(image_id)
    assert image.extra_properties == dict(
        OTHER_PROPS, target='by first', other_03='by second')
    assert image.name == 'named by second'
    assert image.tags == {'t1', 'from-first'}


def test_stale_removal_does_not_undo_a_concurrent_add(ctx, image_id):
    repo1, repo2 = gateway.image_repo(ctx), gateway.image_repo(ctx)
    first, second = repo1.get(image_id), repo2.get(image_id)
    first.extra_properties['added'] = 'yes'
    del second.extra_properties['target']
    repo1.save(first)
    repo2.save(second)
    props = gateway.image_repo(ctx).get(image_id).extra_properties
    assert props == dict(OTHER_PROPS, added='yes')


def test_statement_count_of_a_one_property_patch(ctx, image_id, recorder):
    """The whole read-modify-write of a one-property change: the reads of
    ``get`` and the writes of ``save``, whatever the number of other
    properties."""
    repo = gateway.image_repo(ctx)
    with recorder:
        image = repo.get(image_id)
        image.extra_properties['target'] = 'counted'
        repo.save(image)
    reads = [s for s in recorder.statements if s.verb == 'SELECT']
    writes = recorder.writes
    assert len(writes) == 2, writes
    # image row, properties, tags, locations, and the property recount
    # that keeps concurrent additions within the quota: independent of how
    # many properties the image has.
    assert len(reads) <= 5, reads


@pytest.mark.parametrize('glance_db', ['sqlite'], indirect=True)
def test_sqlite_write_transaction_takes_the_write_lock_first(
        ctx, image_id, recorder):
    """glance.db.api promises that on SQLite a write transaction begins
    with BEGIN IMMEDIATE (so several workers on one file wait for the
    write lock instead of failing half way with "database is locked")."""
    def change(image):
        image.extra_properties['target'] = 'locked'

    statements = _save(ctx, image_id, recorder, change).statements
    assert statements[0].text.split() == ['BEGIN', 'IMMEDIATE'], statements


def test_save_of_an_image_deleted_meanwhile_writes_nothing(ctx, image_id):
    """A request that read the image before another deleted it: its save
    is ImageNotFound and leaves no live property or tag row behind."""
    repo = gateway.image_repo(ctx)
    stale = repo.get(image_id)
    deleter = gateway.image_repo(ctx)
    doomed = deleter.get(image_id)
    doomed.delete(delayed_delete=False)
    deleter.remove(doomed)

    stale.extra_properties['late'] = 'x'
    stale.tags.add('late-tag')
    with pytest.raises(exception.NotFound):
        repo.save(stale)
    rows = _property_rows(image_id)
    assert 'late' not in rows
    assert all(row['deleted'] for row in rows.values()), rows
    tag = models.ImageTag
    with db_api.reader() as session:
        live_tags = session.execute(sql.select(tag.value).where(
            tag.image_id == image_id, tag.deleted == sql.false())).all()
    assert live_tags == []


def test_stale_readers_cannot_exceed_the_property_quota(ctx, image_id):
    """image_property_quota holds however the saves interleave: two
    requests that each saw room for one more property can't both add one
    past the limit (upstream's write-everything save could not: the
    second write replaced the first's property set)."""
    have = len(OTHER_PROPS) + 1
    config.CONF.set_override('image_property_quota', have + 1)
    try:
        repo1, repo2 = gateway.image_repo(ctx), gateway.image_repo(ctx)
        first, second = repo1.get(image_id), repo2.get(image_id)
        first.extra_properties['one_more'] = '1'
        second.extra_properties['another_one'] = '2'
        repo1.save(first)
        try:
            repo2.save(second)
        except exception.LimitExceeded:
            pass
        props = gateway.image_repo(ctx).get(image_id).extra_properties
        assert len(props) <= have + 1, sorted(props)
    finally:
        config.CONF.clear_override('image_property_quota')


def test_concurrent_removals_of_one_key_both_succeed(ctx, image_id):
    """Two requests remove the same property: the second finds it already
    gone and is not an error (upstream bug 1895173)."""
    repo1, repo2 = gateway.image_repo(ctx), gateway.image_repo(ctx)
    first, second = repo1.get(image_id), repo2.get(image_id)
    del first.extra_properties['target']
    del second.extra_properties['target']
    second.extra_properties['other_01'] = 'changed'
    repo1.save(first)
    repo2.save(second)
    props = gateway.image_repo(ctx).get(image_id).extra_properties
    assert 'target' not in props
    assert props['other_01'] == 'changed'


def test_format_change_read_while_queued_is_refused_once_saving(ctx,
                                                                image_id):
    """disk_format may only change while the image is queued. A request
    that read it queued must not change it after an upload moved it on
    (the check it made on its read is stale): its save is a Conflict and
    the format stays."""
    repo1, repo2 = gateway.image_repo(ctx), gateway.image_repo(ctx)
    stale, uploading = repo1.get(image_id), repo2.get(image_id)
    uploading.status = 'saving'
    repo2.save(uploading, from_state='queued')

    stale.disk_format = 'qcow2'
    try:
        repo1.save(stale)
    except exception.Conflict:
        pass
    row = _image_row(image_id)
    assert (row['status'], row['disk_format']) == ('saving', 'raw')
