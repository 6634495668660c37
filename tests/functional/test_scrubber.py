"""glance-scrubber, run as the real command (issue 7; reference
glance-compat.md §5; spec scrub-images-in-parallel).

Images become pending_delete either through the real glance-api with
``delayed_delete`` or, when many are needed, by rows inserted with SQL plus
real files in a filesystem store directory. The scrubber's store is the
instrumented filesystem driver of ``scrub_store`` (loaded through
glance_store's ``glance_store.drivers`` entry points), which logs every
delete call, so "deleted exactly once" is counted, not guessed.
"""

import collections
import datetime
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from glance.db import models
from tests.conftest import sync_database
from tests.functional import helpers, scrub_store
from tests.functional.conftest import GlanceServer
from tests.functional.helpers import Api
from tests.helpers import REPO_ROOT, assert_one_line_error, write_conf

TIMEOUT = 120


# ---------------------------------------------------------------- plumbing

def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Database:
    """Direct SQL on a glance database (its own engine, no pool)."""

    def __init__(self, url):
        self.url = url
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def rows(self, query, **params):
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(query),
                                                           params)]

    def execute(self, statement, params=None):
        with self.engine.begin() as conn:
            return conn.execute(statement if not isinstance(statement, str)
                                else sa.text(statement), params or {})

    def image(self, image_id):
        rows = self.rows('SELECT * FROM images WHERE id = :id', id=image_id)
        assert len(rows) == 1, rows
        return rows[0]

    def locations(self, image_id):
        return self.rows('SELECT * FROM image_locations WHERE image_id = :id '
                         'ORDER BY id', id=image_id)

    def claims(self):
        return self.rows('SELECT * FROM image_location_claims')

    def add_location(self, image_id, url, status='pending_delete'):
        now = utcnow()
        self.execute(sa.insert(models.ImageLocation.__table__).values(
            image_id=image_id, value=url, meta_data={}, status=status,
            deleted=status != 'active',
            deleted_at=None if status == 'active' else now,
            created_at=now, updated_at=now))
        return self.rows('SELECT max(id) AS id FROM image_locations '
                         'WHERE image_id = :id', id=image_id)[0]['id']

    def seed(self, store_dir, count, locations_of=lambda i: 1,
             deleted_at=None):
        """``count`` pending_delete images, as the API leaves them with
        delayed_delete, each location a real file in ``store_dir``;
        returns ``{image_id: [file path, ...]}``."""
        now = utcnow()
        deleted_at = deleted_at or now - datetime.timedelta(seconds=5)
        os.makedirs(store_dir, exist_ok=True)
        images, locations, files = [], [], {}
        visibilities = ('public', 'private', 'shared', 'community')
        for i in range(count):
            image_id = str(uuid.uuid4())
            images.append({
                'id': image_id, 'name': f'seeded-{i}', 'disk_format': 'raw',
                'container_format': 'bare', 'size': 16,
                'status': 'pending_delete', 'owner': 'seed-project',
                'visibility': visibilities[i % 4], 'min_disk': 0,
                'min_ram': 0, 'protected': False, 'os_hidden': False,
                'created_at': now, 'updated_at': deleted_at,
                'deleted_at': deleted_at, 'deleted': True})
            files[image_id] = []
            for n in range(locations_of(i)):
                path = os.path.join(store_dir, f'{image_id}.{n}')
                with open(path, 'wb') as f:
                    f.write(f'data of {image_id} {n}'.encode())
                files[image_id].append(path)
                locations.append({
                    'image_id': image_id, 'value': 'file://' + path,
                    'meta_data': {}, 'status': 'pending_delete',
                    'deleted': True, 'deleted_at': deleted_at,
                    'created_at': now, 'updated_at': deleted_at})
        with self.engine.begin() as conn:
            conn.execute(sa.insert(models.Image.__table__), images)
            conn.execute(sa.insert(models.ImageLocation.__table__), locations)
        return files

    def status_counts(self, table):
        return {r['status']: r['n'] for r in self.rows(
            f'SELECT status, count(*) AS n FROM {table} GROUP BY status')}

    def dispose(self):
        self.engine.dispose()


class Scrubber:
    """Runs ``python -m glance.cmd.scrubber`` with ``--config-file`` for
    each of ``conf_files`` and a glance-scrubber.conf of its own, written
    from ``options`` (``[DEFAULT]`` of the scrubber) per call. The
    instrumented store is on PYTHONPATH and logs to ``self.deletes``."""

    def __init__(self, base_dir, conf_files, driver_dir):
        self.base_dir = str(base_dir)
        self.conf_files = list(conf_files)
        self.deletes = scrub_store.DeleteLog(
            os.path.join(self.base_dir, 'store-deletes.log'))
        self.env = dict(os.environ)
        self.env['PYTHONPATH'] = os.pathsep.join(
            p for p in (driver_dir, os.environ.get('PYTHONPATH')) if p)
        self.env[scrub_store.LOG_ENV] = self.deletes.path
        self.env.pop(scrub_store.DELAY_ENV, None)
        self.count = 0

    def command(self, args, options):
        self.count += 1
        sections = {'DEFAULT': {'scrub_time': 0}}
        sections['DEFAULT'].update(options)
        conf = write_conf(os.path.join(
            self.base_dir, f'glance-scrubber-{self.count}.conf'), sections)
        cmd = [sys.executable, '-m', 'glance.cmd.scrubber']
        for path in self.conf_files + [conf]:
            cmd += ['--config-file', path]
        return cmd + list(args)

    def env_with(self, delay):
        env = dict(self.env)
        if delay:
            env[scrub_store.DELAY_ENV] = str(delay)
        return env

    def run(self, *args, delay=0, timeout=TIMEOUT, **options):
        """One run to its end; returns the CompletedProcess (text)."""
        return subprocess.run(
            self.command(args, options), check=False, capture_output=True,
            text=True,
            timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            env=self.env_with(delay))

    def start(self, *args, delay=0, **options):
        """A scrubber process in the background, output to a file;
        returns ``(Popen, output path)``."""
        out = os.path.join(self.base_dir, f'scrubber-{self.count + 1}.out')
        cmd = self.command(args, options)
        with open(out, 'wb') as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                    cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                    env=self.env_with(delay))
        return proc, out


def read(path):
    with open(path, errors='replace') as f:
        return f.read()


def output_of(result):
    return result.stdout + result.stderr


def error_lines(output):
    return [line for line in output.splitlines()
            if ' ERROR ' in line or line.startswith('ERROR')
            or 'Traceback' in line]


def run_line(output):
    """The progress line of a one-shot run."""
    lines = [line for line in output.splitlines() if 'Scrub run:' in line]
    assert len(lines) == 1, output
    return lines[0]


def wait_for(predicate, timeout=30, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def max_overlap(calls):
    """Most delete calls in progress at one moment."""
    events = sorted([(c[1], 1) for c in calls] + [(c[2], -1) for c in calls])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def file_path(url):
    assert url.startswith('file://'), url
    return url[len('file://'):]


STORE_OPTIONS = {'stores': f'{scrub_store.ENTRY_POINT},http',
                 'default_store': 'file'}


@pytest.fixture(scope='module')
def driver_dir(tmp_path_factory):
    return scrub_store.install_driver(tmp_path_factory.mktemp('driver'))


# ------------------------------------------- against the real glance-api

@pytest.fixture
def api_setup(tmp_path, driver_dir):
    """A glance-api with delayed_delete (SQLite, filesystem store), an
    admin client, the database and a scrubber for it."""
    (tmp_path / 'api').mkdir()
    server = GlanceServer(tmp_path / 'api', {
        'DEFAULT': {'delayed_delete': True, 'workers': 1},
    })
    server.start()
    scrub_conf = write_conf(tmp_path / 'store.conf',
                            {'glance_store': STORE_OPTIONS})
    db = Database(server.database_url)
    try:
        yield (server, Api(server), db,
               Scrubber(tmp_path, [server.conf_file, scrub_conf], driver_dir))
    finally:
        db.dispose()
        server.stop()


def api_delete(api, image_id):
    resp = api.delete(f'/v2/images/{image_id}')
    assert resp.status_code == 204, (resp.status_code, resp.text)


def location_paths(db, image_id):
    return [file_path(loc['value']) for loc in db.locations(image_id)]


def test_one_shot_scrubs_every_visibility(api_setup):
    _server, admin, db, scrubber = api_setup
    images = {}
    for visibility in ('public', 'private', 'shared', 'community'):
        image = admin.create_active(data=visibility.encode() * 100,
                                    visibility=visibility)
        images[visibility] = image['id']
    resp = admin.post(f"/v2/images/{images['shared']}/members",
                      json={'member': helpers.new_project()})
    assert resp.status_code == 200, resp.text
    kept = admin.create_active(data=b'kept')['id']
    paths = {image_id: location_paths(db, image_id)
             for image_id in images.values()}
    for image_id in images.values():
        api_delete(admin, image_id)
        assert db.image(image_id)['status'] == 'pending_delete'
        for loc in db.locations(image_id):
            assert loc['status'] == 'pending_delete'
        for path in paths[image_id]:
            assert os.path.exists(path), 'delayed delete removed the data'

    result = scrubber.run()

    output = output_of(result)
    assert result.returncode == 0, output
    assert error_lines(output) == []
    for visibility, image_id in images.items():
        row = db.image(image_id)
        assert (row['status'], bool(row['deleted'])) == ('deleted', True), \
            visibility
        for loc in db.locations(image_id):
            assert (loc['status'], bool(loc['deleted'])) == ('deleted', True)
        for path in paths[image_id]:
            assert not os.path.exists(path), visibility
    all_paths = [p for ps in paths.values() for p in ps]
    assert sorted(scrubber.deletes.paths('ok')) == sorted(all_paths)
    assert len(scrubber.deletes.calls) == len(all_paths)
    # The image that was not deleted keeps its data.
    assert db.image(kept)['status'] == 'active'
    assert all(os.path.exists(p) for p in location_paths(db, kept))
    assert db.claims() == []
    line = run_line(output)
    assert '4 images (4 locations) scrubbed' in line, line
    assert '0 locations failed' in line and '0 left' in line, line

    # Nothing is left: a second run does nothing and deletes nothing.
    again = scrubber.run()
    assert again.returncode == 0, output_of(again)
    assert '0 images (0 locations) scrubbed' in run_line(output_of(again))
    assert len(scrubber.deletes.calls) == len(all_paths)


def test_scrub_time_is_respected(api_setup):
    _server, admin, db, scrubber = api_setup
    old = admin.create_active(data=b'old')['id']
    new = admin.create_active(data=b'new')['id']
    paths = {i: location_paths(db, i) for i in (old, new)}
    api_delete(admin, old)
    api_delete(admin, new)
    # ``old`` was deleted two hours ago.
    two_hours_ago = utcnow() - datetime.timedelta(hours=2)
    db.execute('UPDATE images SET deleted_at = :t WHERE id = :id',
               {'t': two_hours_ago, 'id': old})
    db.execute('UPDATE image_locations SET deleted_at = :t '
               'WHERE image_id = :id', {'t': two_hours_ago, 'id': old})

    result = scrubber.run(scrub_time=3600)

    assert result.returncode == 0, output_of(result)
    assert error_lines(output_of(result)) == []
    assert db.image(old)['status'] == 'deleted'
    assert not any(os.path.exists(p) for p in paths[old])
    # Not yet due: untouched.
    assert db.image(new)['status'] == 'pending_delete'
    assert [loc['status'] for loc in db.locations(new)] == ['pending_delete']
    assert all(os.path.exists(p) for p in paths[new])
    assert scrubber.deletes.paths() == paths[old]

    result = scrubber.run(scrub_time=0)
    assert result.returncode == 0, output_of(result)
    assert db.image(new)['status'] == 'deleted'
    assert not any(os.path.exists(p) for p in paths[new])


def test_data_already_gone_counts_as_scrubbed(api_setup):
    _server, admin, db, scrubber = api_setup
    image_id = admin.create_active(data=b'soon gone')['id']
    [path] = location_paths(db, image_id)
    api_delete(admin, image_id)
    os.unlink(path)

    result = scrubber.run()

    output = output_of(result)
    assert result.returncode == 0, output
    assert error_lines(output) == []
    assert db.image(image_id)['status'] == 'deleted'
    assert [loc['status'] for loc in db.locations(image_id)] == ['deleted']
    assert scrubber.deletes.paths('notfound') == [path]
    assert '1 images (1 locations) scrubbed' in run_line(output)


def test_store_error_leaves_location_pending_and_run_goes_on(api_setup,
                                                             tmp_path):
    _server, admin, db, scrubber = api_setup
    # ``mixed`` has good data and a location whose delete fails in the
    # filesystem store (the path is a directory: unlink fails, Forbidden).
    mixed = admin.create_active(data=b'mixed')['id']
    [mixed_path] = location_paths(db, mixed)
    # ``remote``'s location is in no configured store (unknown scheme).
    remote = admin.create_active(data=b'remote')['id']
    [remote_path] = location_paths(db, remote)
    good = [admin.create_active(data=b'good %d' % i)['id'] for i in range(3)]
    good_paths = [p for i in good for p in location_paths(db, i)]
    for image_id in [mixed, remote] + good:
        api_delete(admin, image_id)
    blocker = tmp_path / 'a-directory'
    blocker.mkdir()
    bad_dir_loc = db.add_location(mixed, f'file://{blocker}')
    # The unknown location replaces remote's own (whose file stays).
    [remote_loc] = db.locations(remote)
    db.execute("UPDATE image_locations SET value = :v WHERE id = :id",
               {'v': f'nosuchstore://somewhere/{remote}',
                'id': remote_loc['id']})

    result = scrubber.run(scrub_pool_size=2)

    output = output_of(result)
    assert result.returncode == 0, output
    errors = error_lines(output)
    assert len(errors) == 2, output
    [mixed_error] = [e for e in errors if mixed in e]
    assert str(bad_dir_loc) in mixed_error, mixed_error
    [remote_error] = [e for e in errors if remote in e]
    assert str(remote_loc['id']) in remote_error, remote_error
    # The others were scrubbed.
    for image_id in good:
        assert db.image(image_id)['status'] == 'deleted'
    assert not any(os.path.exists(p) for p in good_paths)
    # The good location of ``mixed`` is scrubbed, the failed one waits,
    # and so does the image.
    statuses = {loc['id']: loc['status'] for loc in db.locations(mixed)}
    assert statuses[bad_dir_loc] == 'pending_delete', statuses
    assert sorted(statuses.values()) == ['deleted', 'pending_delete']
    assert not os.path.exists(mixed_path)
    assert blocker.is_dir()
    assert db.image(mixed)['status'] == 'pending_delete'
    assert db.image(remote)['status'] == 'pending_delete'
    assert [loc['status'] for loc in db.locations(remote)] == [
        'pending_delete']
    assert os.path.exists(remote_path)
    assert db.claims() == []
    line = run_line(output)
    assert '3 images' in line and '2 locations failed' in line, line
    assert '2 left' in line, line

    # The next run tries again, logs each failure once again, and scrubs
    # what can now be scrubbed.
    blocker.rmdir()
    again = scrubber.run()
    output = output_of(again)
    assert again.returncode == 0, output
    errors = error_lines(output)
    assert len(errors) == 1 and remote in errors[0], output
    assert db.image(mixed)['status'] == 'deleted'
    assert db.image(remote)['status'] == 'pending_delete'


def test_read_only_store_location_only_loses_its_record(api_setup):
    """An http location is not ours to delete: the scrubber deletes its
    record (nothing to delete in the store) instead of failing forever."""
    _server, admin, db, scrubber = api_setup
    image_id = admin.create_active(data=b'local copy')['id']
    [path] = location_paths(db, image_id)
    api_delete(admin, image_id)
    http_loc = db.add_location(image_id, 'http://127.0.0.1:9/some/image')

    result = scrubber.run()

    output = output_of(result)
    assert result.returncode == 0, output
    assert error_lines(output) == []
    statuses = {loc['id']: loc['status'] for loc in db.locations(image_id)}
    assert statuses[http_loc] == 'deleted', statuses
    assert set(statuses.values()) == {'deleted'}
    assert db.image(image_id)['status'] == 'deleted'
    assert not os.path.exists(path)


# ---------------------------------------------------------------- restore

def test_restore_brings_back_image_with_metadata(api_setup):
    server, admin, db, scrubber = api_setup
    data = b'restore me ' * 1000
    image = admin.create_active(data=data, visibility='shared',
                                tags=['t1', 't2'], foo='bar', name='keeper')
    image_id = image['id']
    member = helpers.new_project()
    resp = admin.post(f'/v2/images/{image_id}/members',
                      json={'member': member})
    assert resp.status_code == 200, resp.text
    member_api = Api(server, member)
    resp = member_api.put(f'/v2/images/{image_id}/members/{member}',
                          json={'status': 'accepted'})
    assert resp.status_code == 200, resp.text
    [path] = location_paths(db, image_id)
    api_delete(admin, image_id)
    assert admin.get(f'/v2/images/{image_id}').status_code == 404

    result = scrubber.run('--restore', image_id)

    assert result.returncode == 0, output_of(result)
    assert error_lines(output_of(result)) == []
    shown = admin.show(image_id)
    assert shown['status'] == 'active'
    assert shown['foo'] == 'bar' and shown['name'] == 'keeper'
    assert sorted(shown['tags']) == ['t1', 't2']
    assert shown['checksum'] == image['checksum']
    assert shown['visibility'] == 'shared'
    resp = admin.get(f'/v2/images/{image_id}/members')
    assert resp.status_code == 200, resp.text
    assert [(m['member_id'], m['status']) for m in resp.json()['members']] \
        == [(member, 'accepted')]
    download = admin.download(image_id)
    assert download.status_code == 200, download.status_code
    assert download.content == data
    # The member sees it again.
    assert member_api.download(image_id).content == data
    assert db.image(image_id)['deleted'] in (0, False)
    assert db.image(image_id)['deleted_at'] is None
    assert [loc['status'] for loc in db.locations(image_id)] == ['active']

    # A scrubber now leaves its data alone.
    result = scrubber.run()
    assert result.returncode == 0
    assert os.path.exists(path)
    assert scrubber.deletes.calls == []
    # And it can be deleted and scrubbed as any image.
    api_delete(admin, image_id)
    assert scrubber.run().returncode == 0
    assert not os.path.exists(path)
    assert db.image(image_id)['status'] == 'deleted'


def test_restore_refusals(api_setup):
    _server, admin, db, scrubber = api_setup
    active = admin.create_active(data=b'active')['id']
    scrubbed = admin.create_active(data=b'scrubbed')['id']
    api_delete(admin, scrubbed)
    assert scrubber.run().returncode == 0
    assert db.image(scrubbed)['status'] == 'deleted'

    result = scrubber.run('--restore', active)
    assert_one_line_error(result, 'cannot restore', 'active')
    assert db.image(active)['status'] == 'active'

    unknown = str(uuid.uuid4())
    result = scrubber.run('--restore', unknown)
    assert_one_line_error(result, 'no image found', unknown)

    # Its data is already deleted.
    result = scrubber.run('--restore', scrubbed)
    assert_one_line_error(result, 'cannot restore', 'deleted')
    assert db.image(scrubbed)['status'] == 'deleted'

    pending = admin.create_active(data=b'pending')['id']
    api_delete(admin, pending)
    result = scrubber.run('--restore', pending, '--daemon')
    assert_one_line_error(result, 'restore and daemon options should not be '
                                  'set together')
    assert db.image(pending)['status'] == 'pending_delete'


def test_unusable_store_configuration_is_a_one_line_error(api_setup,
                                                         tmp_path):
    _server, admin, db, scrubber = api_setup
    image_id = admin.create_active(data=b'kept')['id']
    api_delete(admin, image_id)
    broken = write_conf(str(tmp_path / 'broken-store.conf'),
                        {'glance_store': {'stores': 'http',
                                          'default_store': 'file'}})
    result = subprocess.run(
        scrubber.command(['--config-file', broken], {}), check=False,
        capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL, env=scrubber.env_with(0))
    assert_one_line_error(result, 'store configuration', 'file')
    assert db.image(image_id)['status'] == 'pending_delete'


def test_restore_refused_when_locations_already_scrubbed(api_setup):
    """The image is still pending_delete (say, one location failed to be
    deleted and then was deleted by an operator) but every location's data
    is gone: restoring it would give an active image without data."""
    _server, admin, db, scrubber = api_setup
    image_id = admin.create_active(data=b'half')['id']
    api_delete(admin, image_id)
    db.execute("UPDATE image_locations SET status = 'deleted' "
               "WHERE image_id = :id", {'id': image_id})

    result = scrubber.run('--restore', image_id)

    assert_one_line_error(result, image_id, 'deleted')
    assert db.image(image_id)['status'] == 'pending_delete'


def test_restore_refused_when_data_gone_from_store(api_setup):
    """Its location still waits for the scrubber, but the data is no
    longer in the store: restoring would give an active image that can't
    be downloaded."""
    _server, admin, db, scrubber = api_setup
    image_id = admin.create_active(data=b'vanished')['id']
    [path] = location_paths(db, image_id)
    api_delete(admin, image_id)
    os.unlink(path)

    result = scrubber.run('--restore', image_id)

    assert_one_line_error(result, image_id)
    assert db.image(image_id)['status'] == 'pending_delete'


# ------------------------------------------- SQL-seeded, no glance-api

@pytest.fixture
def seeded_setup(tmp_path, driver_dir, new_database_url):
    """Factory ``make(kind)``: a synced database of that kind, a store
    directory, the database helper and a scrubber configured for them."""
    made = []

    def make(kind='sqlite'):
        url = new_database_url(kind)
        sync_database(url)
        base = tmp_path / kind
        base.mkdir()
        store_dir = str(base / 'images')
        os.makedirs(store_dir)
        conf = write_conf(base / 'glance-api.conf', {
            'database': {'connection': url},
            'glance_store': dict(STORE_OPTIONS,
                                 filesystem_store_datadir=store_dir),
        })
        db = Database(url)
        made.append(db)
        return store_dir, db, Scrubber(base, [conf], driver_dir)

    yield make
    for db in made:
        db.dispose()


def assert_all_scrubbed_once(db, scrubber, files):
    """Every file deleted by exactly one successful delete call, every
    location and image deleted, no claim left."""
    paths = [p for ps in files.values() for p in ps]
    counts = collections.Counter(scrubber.deletes.paths())
    repeated = sorted(p for p, n in counts.items() if n != 1)
    assert repeated == [], (f'{len(repeated)} of {len(paths)} locations '
                            f'deleted more than once: {repeated[:3]}')
    skipped = sorted(set(paths) - set(counts))
    assert skipped == [], (f'{len(skipped)} of {len(paths)} locations never '
                           f'deleted: {skipped[:3]}')
    outcomes = collections.Counter(c[3] for c in scrubber.deletes.calls)
    assert outcomes == {'ok': len(paths)}, outcomes
    assert not any(os.path.exists(p) for p in paths)
    assert db.status_counts('image_locations') == {'deleted': len(paths)}
    assert db.status_counts('images') == {'deleted': len(files)}
    assert db.claims() == []


@pytest.mark.parametrize('pool_size', [1, 8])
def test_pool_size_scrubs_everything(seeded_setup, pool_size):
    store_dir, db, scrubber = seeded_setup()
    # Every third image has two locations.
    files = db.seed(store_dir, 40, lambda i: 2 if i % 3 == 0 else 1)

    # Deletes that take time, so that the pool has something to overlap.
    result = scrubber.run(scrub_pool_size=pool_size,
                          delay=0.02 if pool_size == 1 else 0.2)

    output = output_of(result)
    assert result.returncode == 0, output
    assert error_lines(output) == []
    assert_all_scrubbed_once(db, scrubber, files)
    calls = scrubber.deletes.calls
    line = run_line(output)
    assert '40 images (54 locations) scrubbed' in line, line
    # The pool's parallelism is per image: locations of one image are
    # deleted one after another.
    by_image = collections.defaultdict(list)
    for call in calls:
        by_image[os.path.basename(call[4]).split('.')[0]].append(call)
    for image_calls in by_image.values():
        assert max_overlap(image_calls) == 1
    if pool_size == 1:
        assert max_overlap(calls) == 1
    else:
        assert 4 <= max_overlap(calls) <= pool_size, max_overlap(calls)


def test_rate_limit_bounds_deletes_per_second(seeded_setup):
    store_dir, db, scrubber = seeded_setup()
    files = db.seed(store_dir, 40)

    result = scrubber.run(scrub_pool_size=8, scrub_rate_limit=20)

    output = output_of(result)
    assert result.returncode == 0, output
    assert error_lines(output) == []
    assert_all_scrubbed_once(db, scrubber, files)
    starts = sorted(c[1] for c in scrubber.deletes.calls)
    # 40 deletes at 20/s: the last starts >= 39/20 s after the first.
    assert starts[-1] - starts[0] >= 1.9, starts[-1] - starts[0]
    # No one-second window holds more than the limit (+1 for the edges).
    for i, start in enumerate(starts):
        in_window = sum(1 for s in starts[i:] if s < start + 1.0)
        assert in_window <= 21, in_window
    # ...and the limit is not much slower than it says.
    assert starts[-1] - starts[0] < 4, starts[-1] - starts[0]


# ------------------------------------------------------------- daemon mode

def test_daemon_scrubs_at_each_wakeup_and_stops_on_sigterm(seeded_setup):
    store_dir, db, scrubber = seeded_setup()
    first = db.seed(store_dir, 3)
    proc, out = scrubber.start('--daemon', wakeup_time=1)
    try:
        assert wait_for(lambda: db.status_counts('images') == {'deleted': 3},
                        timeout=60), read(out)
        second = db.seed(store_dir, 3)
        assert wait_for(lambda: db.status_counts('images') == {'deleted': 6},
                        timeout=60), read(out)
        # Asleep between runs: SIGTERM ends it at once, cleanly.
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=30) == 0, read(out)
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = read(out)
    assert error_lines(output) == [], output
    assert_all_scrubbed_once(db, scrubber, dict(first, **second))


def test_daemon_survives_database_errors(seeded_setup):
    """A daemon runs for days: a database that fails for a while (here a
    table gone for a few wake-ups; a restarting server looks the same) is
    logged and retried at the next wake-up, not the end of the daemon."""
    store_dir, db, scrubber = seeded_setup()
    proc, out = scrubber.start('--daemon', wakeup_time=1)
    try:
        assert wait_for(lambda: 'Scrub run:' in read(out), timeout=60), \
            read(out)
        db.execute('ALTER TABLE image_location_claims RENAME TO claims_away')
        assert wait_for(lambda: error_lines(read(out)), timeout=30)
        time.sleep(1.5)
        db.execute('ALTER TABLE claims_away RENAME TO image_location_claims')
        assert proc.poll() is None, read(out)
        files = db.seed(store_dir, 3)
        assert wait_for(lambda: db.status_counts('images') == {'deleted': 3},
                        timeout=60), read(out)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, read(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_all_scrubbed_once(db, scrubber, files)


def test_daemon_sigterm_finishes_images_in_hand(seeded_setup):
    """A stop lets the images being scrubbed finish (their locations end
    deleted, no claim left) and does not start the others."""
    store_dir, db, scrubber = seeded_setup()
    files = db.seed(store_dir, 20)
    delay = 0.5
    proc, out = scrubber.start('--daemon', wakeup_time=60, delay=delay,
                               scrub_pool_size=2)
    try:
        assert wait_for(lambda: scrubber.deletes.calls, timeout=60), \
            read(out)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        returncode = proc.wait(timeout=60)
        stopped_in = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = read(out)
    assert returncode == 0, output
    assert error_lines(output) == [], output
    assert db.claims() == []
    deleted = set(scrubber.deletes.paths('ok'))
    for image_id, paths in files.items():
        [loc] = db.locations(image_id)
        [path] = paths
        if path in deleted:
            assert not os.path.exists(path)
            assert loc['status'] == 'deleted'
            assert db.image(image_id)['status'] == 'deleted'
        else:
            assert os.path.exists(path)
            assert loc['status'] == 'pending_delete'
            assert db.image(image_id)['status'] == 'pending_delete'
    # Only what was in hand was finished: the 2 being deleted when the
    # signal came (and perhaps 2 more about to start), not all 20.
    assert len(deleted) <= 6, (len(deleted), stopped_in)
    assert stopped_in < 3 * delay + 2, stopped_in


# ------------------------------------------------- several scrubbers at once

@pytest.mark.parametrize('kind', ['mariadb', 'postgresql'])
def test_three_scrubbers_delete_each_location_exactly_once(seeded_setup,
                                                           kind):
    store_dir, db, scrubber = seeded_setup(kind)
    # 500 images, every fifth with two locations: 600 locations.
    files = db.seed(store_dir, 500, lambda i: 2 if i % 5 == 0 else 1)
    procs = [scrubber.start(scrub_pool_size=4) for _ in range(3)]
    try:
        for proc, out in procs:
            assert proc.wait(timeout=240) == 0, read(out)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = [line for _, out in procs for line in error_lines(read(out))]
    assert errors == [], f'{len(errors)} error lines, the first: {errors[:5]}'
    assert_all_scrubbed_once(db, scrubber, files)
    assert os.listdir(store_dir) == []
    # The work was really shared.
    workers = collections.Counter(c[0] for c in scrubber.deletes.calls)
    assert len(workers) >= 2, workers
