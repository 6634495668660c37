"""Concurrent updates of one image lose nothing (issue 6, the distinction
layer), against the real glance-api with ``workers = 4`` on SQLite,
MariaDB and PostgreSQL.

Upstream Glance's save writes every column and the whole property set of
the image as the request read it (glance-compat.md §1.4, §7), so two
PATCHes of different properties racing each other undo one another, and a
PATCH racing an upload can put the image back to ``saving`` without its
size and checksum. Here every client works at the same moment (a
``threading.Barrier``), each with its own ``requests.Session`` (its own
connection), and the image is checked afterwards.
"""

import hashlib
import json
import os
import threading
import time

import pytest
import requests

from tests.functional.conftest import GlanceServer
from tests.scratch_databases import scratch_database

KINDS = ['sqlite', 'mariadb', 'postgresql']
K = 50        # concurrent clients, each with its own property (issue 6)
ROUNDS = 3    # K clients at once, this many times
TIMEOUT = 120
PATCH = 'application/openstack-images-v2.1-json-patch'
OCTET = 'application/octet-stream'
# Something every image starts with: nobody's PATCH may disturb it.
BASELINE = {'base_a': 'one', 'base_b': 'two'}


@pytest.fixture(scope='module', params=KINDS)
def glance(request, db_servers, tmp_path_factory):
    """glance-api with 4 workers on a fresh database of each kind, one
    per kind for the module (each test works on images of its own)."""
    url, drop = scratch_database(request.param, db_servers,
                                 tmp_path_factory.mktemp('db'))
    server = GlanceServer(tmp_path_factory.mktemp('glance'),
                          {'DEFAULT': {'workers': 4}}, url)
    try:
        yield server.start()
    finally:
        server.stop()
        drop()


@pytest.fixture
def client(glance):
    client = Client(glance)
    yield client


class Client:
    """One API client: its own session, so its own connection."""

    def __init__(self, server):
        self.url = server.url
        self.session = requests.Session()

    def close(self):
        self.session.close()

    def patch(self, image_id, ops):
        return self.session.patch(
            f'{self.url}/v2/images/{image_id}', data=json.dumps(ops),
            headers={'Content-Type': PATCH}, timeout=TIMEOUT)

    def show(self, image_id):
        resp = self.session.get(f'{self.url}/v2/images/{image_id}',
                                timeout=TIMEOUT)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def create(self, **body):
        resp = self.session.post(f'{self.url}/v2/images', json=body,
                                 timeout=TIMEOUT)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return resp.json()

    def upload(self, image_id, body):
        return self.session.put(
            f'{self.url}/v2/images/{image_id}/file', data=body,
            headers={'Content-Type': OCTET}, timeout=TIMEOUT)

    def download(self, image_id):
        return self.session.get(f'{self.url}/v2/images/{image_id}/file',
                                timeout=TIMEOUT)


def _new_image(client, **extra):
    body = {'name': 'concurrent', 'disk_format': 'raw',
            'container_format': 'bare', 'tags': ['keep-me'],
            'min_ram': 128}
    body.update(BASELINE)
    body.update(extra)
    return client.create(**body)


def _all_at_once(server, jobs):
    """Run each ``job(client)`` in its own thread with its own client, all
    released together; returns their results in order. A client first
    opens its connection (GET /versions) so that the requests start at the
    same moment."""
    barrier = threading.Barrier(len(jobs), timeout=TIMEOUT)
    results = [None] * len(jobs)
    errors = []

    def run(index, job):
        client = Client(server)
        try:
            client.session.get(f'{server.url}/versions', timeout=TIMEOUT)
            barrier.wait()
            results[index] = job(client)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append((index, repr(e)))
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i, job), daemon=True)
               for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads), 'clients hung'
    assert not errors, errors
    return results


def _patcher(image_id, ops):
    def job(client):
        resp = client.patch(image_id, ops)
        return resp.status_code, resp.text
    return job


def _assert_all_ok(results, what):
    failed = [(i, status, text[:300]) for i, (status, text)
              in enumerate(results) if status != 200]
    assert not failed, f'{what}: {len(failed)} PATCHes failed: {failed[:5]}'


def _assert_untouched(image, original):
    """Whatever no client changed is as it was."""
    for key, value in BASELINE.items():
        assert image.get(key) == value, (key, image.get(key))
    for field in ('tags', 'min_ram', 'min_disk', 'visibility', 'status',
                  'disk_format', 'container_format', 'owner', 'protected',
                  'os_hidden', 'size', 'checksum', 'created_at'):
        assert image[field] == original[field], (field, image[field],
                                                 original[field])


def test_k_clients_patch_different_properties_and_name(glance, client):
    """K clients each ``add /prop_<k>`` of one image, and one more client
    renames it, all at the same moment, ROUNDS times (first round inserts
    the properties, later rounds change them): every change survives."""
    original = _new_image(client)
    image_id = original['id']
    for round_ in range(ROUNDS):
        jobs = [_patcher(image_id, [{'op': 'add', 'path': f'/prop_{k}',
                                     'value': f'r{round_}-k{k}'}])
                for k in range(K)]
        jobs.append(_patcher(image_id, [{'op': 'replace', 'path': '/name',
                                         'value': f'name-r{round_}'}]))
        started = time.monotonic()
        results = _all_at_once(glance, jobs)
        elapsed = time.monotonic() - started
        _assert_all_ok(results, f'round {round_}')

        image = client.show(image_id)
        lost = {f'prop_{k}': image.get(f'prop_{k}') for k in range(K)
                if image.get(f'prop_{k}') != f'r{round_}-k{k}'}
        assert not lost, (
            f'round {round_} ({elapsed:.1f}s): {len(lost)} of {K} '
            f'property changes lost: {sorted(lost.items())[:10]}')
        assert image['name'] == f'name-r{round_}', (
            f'round {round_}: the rename was lost: {image["name"]!r}')
        _assert_untouched(image, original)
        extra = set(image) - set(original) - {f'prop_{k}' for k in range(K)}
        assert not extra, extra


def test_property_and_name_changed_together_both_survive(glance, client):
    """Four clients at once: one changes a property, one the name, two
    remove (or both re-add) another property; several times over; none
    reverts another, and the key both remove (or add) is not an error."""
    original = _new_image(client, color='none', toggle='on')
    image_id = original['id']
    for round_ in range(10):
        toggle = ({'op': 'remove', 'path': '/toggle'} if round_ % 2 == 0
                  else {'op': 'add', 'path': '/toggle', 'value': 'on'})
        results = _all_at_once(glance, [
            _patcher(image_id, [{'op': 'replace', 'path': '/color',
                                 'value': f'color-{round_}'}]),
            _patcher(image_id, [{'op': 'replace', 'path': '/name',
                                 'value': f'name-{round_}'}]),
            _patcher(image_id, [toggle]),
            _patcher(image_id, [toggle]),
        ])
        _assert_all_ok(results[:2], f'round {round_}')
        togglers = sorted(status for status, _text in results[2:])
        # Both add (add is an upsert) or remove; a remover that reads
        # after the other's removal gets 409 "does not exist".
        assert togglers in ([200, 200], [200, 409]), (round_, results[2:])
        assert round_ % 2 == 0 or togglers == [200, 200], results[2:]
        image = client.show(image_id)
        assert (image['color'], image['name']) == (
            f'color-{round_}', f'name-{round_}'), f'round {round_}'
        assert image.get('toggle') == (None if round_ % 2 == 0 else 'on'), (
            f'round {round_}: toggle is {image.get("toggle")!r}')
        _assert_untouched(image, original)


def test_same_key_last_write_wins_and_nothing_else_moves(glance, client):
    """Two clients set the same key at once, an existing one and a new one
    (both INSERT it), while a third sets another key: each key ends with
    one of the two values, the other key and every other attribute are
    untouched."""
    original = _new_image(client, shared='initial')
    image_id = original['id']
    for round_ in range(5):
        values = (f'a-{round_}', f'b-{round_}')
        results = _all_at_once(glance, [
            _patcher(image_id, [
                {'op': 'replace', 'path': '/shared', 'value': values[0]},
                {'op': 'add', 'path': f'/fresh_{round_}',
                 'value': values[0]}]),
            _patcher(image_id, [
                {'op': 'replace', 'path': '/shared', 'value': values[1]},
                {'op': 'add', 'path': f'/fresh_{round_}',
                 'value': values[1]}]),
            _patcher(image_id, [{'op': 'add', 'path': '/bystander',
                                 'value': f'c-{round_}'}]),
        ])
        _assert_all_ok(results, f'round {round_}')
        image = client.show(image_id)
        assert image['shared'] in values, (round_, image['shared'])
        assert image[f'fresh_{round_}'] in values, (
            round_, image[f'fresh_{round_}'])
        assert image['bystander'] == f'c-{round_}', round_
        assert image['name'] == original['name']
        _assert_untouched(image, original)
        assert set(image) == set(original) | {'bystander'} | {
            f'fresh_{r}' for r in range(round_ + 1)}

    # Then one more plain write of each key is what everyone sees.
    resp = client.patch(image_id, [
        {'op': 'replace', 'path': '/shared', 'value': 'final'},
        {'op': 'replace', 'path': '/fresh_0', 'value': 'final'}])
    assert resp.status_code == 200, resp.text
    image = client.show(image_id)
    assert (image['shared'], image['fresh_0']) == ('final', 'final')


def _tagger(method, image_id, tag):
    def job(client):
        resp = client.session.request(
            method, f'{client.url}/v2/images/{image_id}/tags/{tag}',
            timeout=TIMEOUT)
        return (200 if resp.status_code == 204 else resp.status_code,
                resp.text)
    return job


def test_concurrent_tag_changes_all_survive(glance, client):
    """20 clients each PUT a tag of their own, two PUT the same new tag and
    one DELETEs an existing tag, all at once: every tag change survives;
    the tag added twice is one tag, and one DELETE removes it."""
    original = _new_image(client, tags=['keep-me', 'old'])
    image_id = original['id']
    jobs = [_tagger('PUT', image_id, f'tag-{k}') for k in range(20)]
    jobs += [_tagger('PUT', image_id, 'twice'),
             _tagger('PUT', image_id, 'twice'),
             _tagger('DELETE', image_id, 'old')]
    _assert_all_ok(_all_at_once(glance, jobs), 'tags')
    image = client.show(image_id)
    assert sorted(image['tags']) == sorted(
        ['keep-me', 'twice'] + [f'tag-{k}' for k in range(20)])
    resp = client.session.delete(
        f'{client.url}/v2/images/{image_id}/tags/twice', timeout=TIMEOUT)
    assert resp.status_code == 204, resp.text
    assert 'twice' not in client.show(image_id)['tags']


def _slow_body(pieces, go_on, finished):
    """A chunked request body: the first piece, then (once ``go_on`` is
    set) the rest with small pauses; ``finished`` is set when all is
    sent."""
    def body():
        yield pieces[0]
        assert go_on.wait(TIMEOUT), 'the test never let the upload go on'
        for piece in pieces[1:]:
            time.sleep(0.02)
            yield piece
        finished.set()
    return body()


def test_patch_racing_an_upload_keeps_property_and_status(glance, client):
    """A slow upload is in ``saving`` while clients PATCH the image (before
    the data is all sent, and while the upload finishes): the image ends
    ``active`` with size and checksums AND with every PATCHed change."""
    original = _new_image(client, to_remove='x')
    image_id = original['id']
    pieces = [os.urandom(32 * 1024) for _ in range(24)]
    data = b''.join(pieces)
    go_on, finished = threading.Event(), threading.Event()
    upload = {}

    def uploader():
        uploading = Client(glance)
        try:
            upload['resp'] = uploading.upload(
                image_id, _slow_body(pieces, go_on, finished))
        except Exception as e:  # noqa: BLE001  (reported below)
            upload['error'] = repr(e)
        finally:
            go_on.set()
            finished.set()
            uploading.close()

    thread = threading.Thread(target=uploader, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while client.show(image_id)['status'] != 'saving':
            assert time.monotonic() < deadline, 'upload never started'
            assert thread.is_alive(), upload
            time.sleep(0.02)

        # 1. While saving: a property, the name, a removal.
        resp = client.patch(image_id, [
            {'op': 'add', 'path': '/during_upload', 'value': 'yes'},
            {'op': 'replace', 'path': '/name', 'value': 'renamed'},
            {'op': 'remove', 'path': '/to_remove'}])
        assert resp.status_code == 200, resp.text
        assert resp.json()['status'] == 'saving'

        # 2. Let the upload go on; PATCH all the while it finishes, so
        # that some PATCH reads the image in saving and writes it after
        # the upload made it active.
        go_on.set()
        patched = []
        after_upload = 0
        while after_upload < 3:
            if not thread.is_alive():
                after_upload += 1
            n = len(patched)
            resp = client.patch(image_id, [
                {'op': 'add', 'path': f'/late_{n}', 'value': str(n)}])
            assert resp.status_code == 200, (n, resp.text)
            patched.append(n)
    finally:
        go_on.set()
        thread.join(TIMEOUT)
    assert 'error' not in upload, upload
    assert upload['resp'].status_code == 204, upload['resp'].text

    image = client.show(image_id)
    assert image['status'] == 'active'
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['os_hash_algo'] == 'sha512'
    assert image['os_hash_value'] == hashlib.sha512(data).hexdigest()
    assert image['during_upload'] == 'yes'
    assert image['name'] == 'renamed'
    assert 'to_remove' not in image
    lost = [n for n in patched if image.get(f'late_{n}') != str(n)]
    assert not lost, f'PATCHes during the upload lost: {lost}'
    for key, value in BASELINE.items():
        assert image[key] == value
    assert image['tags'] == original['tags']
    resp = client.download(image_id)
    assert resp.status_code == 200
    assert resp.content == data


def _uploader(image_id, data):
    def job(client):
        resp = client.upload(image_id, data)
        return resp.status_code, resp.text
    return job


def test_concurrent_uploads_one_wins_by_compare_and_set(glance, client):
    """Two uploads of different data to one queued image at the same
    moment: the status move queued -> saving is compare-and-set, so one
    upload wins (204) and the other is refused (409); the image holds the
    winner's data."""
    for _ in range(3):
        image_id = _new_image(client)['id']
        datas = [os.urandom(64 * 1024), os.urandom(64 * 1024)]

        results = _all_at_once(glance, [_uploader(image_id, d)
                                        for d in datas])
        statuses = sorted(status for status, _text in results)
        assert statuses == [204, 409], results
        winner = datas[[status for status, _ in results].index(204)]
        image = client.show(image_id)
        assert image['status'] == 'active'
        assert image['size'] == len(winner)
        assert image['checksum'] == hashlib.md5(winner).hexdigest()
        resp = client.download(image_id)
        assert resp.status_code == 200
        assert resp.content == winner
