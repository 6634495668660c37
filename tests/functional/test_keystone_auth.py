"""glance-api with the keystone flavor against a real keystone (the
acceptance harness's): tokens are validated by keystonemiddleware, and the
roles and project of each token drive the policies as upstream's defaults
do (reader/member/admin of their own or another project, the service role).

Skips with the reason when the harness can't be set up (no network for
its virtualenvs, say); fails instead under GLANCE_TEST_REQUIRE_ALL=1.
"""

import uuid

import pytest
import requests

from tests import acceptance_harness as harness

PASSWORD = 'Secret-%s' % uuid.uuid4().hex[:8]
PATCH = 'application/openstack-images-v2.1-json-patch'
TIMEOUT = 60


@pytest.fixture(scope='module')
def keystone():
    with harness.keystone() as url:
        yield harness.Identity(url)


@pytest.fixture(scope='module')
def glance(keystone, tmp_path_factory):
    server = harness.start_glance(tmp_path_factory.mktemp('glance'))
    yield server
    server.stop()


class Caller:
    """Requests to glance with one keystone token (or none)."""

    def __init__(self, glance, token=None, project_id=None):
        self.url = glance.url
        self.project_id = project_id
        self.headers = {'X-Auth-Token': token} if token else {}

    def __call__(self, method, path, **kwargs):
        headers = dict(self.headers, **kwargs.pop('headers', {}))
        return requests.request(method, self.url + path, headers=headers,
                                timeout=TIMEOUT, **kwargs)

    def patch(self, path, operations):
        return self('PATCH', path, json=operations,
                    headers={'Content-Type': PATCH})


@pytest.fixture(scope='module')
def people(keystone, glance):
    """Callers by name: reader/member of project A, member/admin of
    project B, a user of project A with only the service role."""
    tag = uuid.uuid4().hex[:8]
    projects = {p: keystone.project('glance-test-%s-%s' % (p, tag))
                for p in ('a', 'b')}
    who = {'a_reader': ('a', ['reader']), 'a_member': ('a', ['member']),
           'b_member': ('b', ['member']), 'b_admin': ('b', ['admin']),
           'service': ('a', ['service'])}
    callers = {}
    for name, (project, roles) in who.items():
        user = '%s-%s' % (name, tag)
        keystone.user(user, PASSWORD, projects[project], roles)
        token = keystone.token(user, PASSWORD,
                               'glance-test-%s-%s' % (project, tag))
        callers[name] = Caller(glance, token, projects[project])
    callers['anonymous'] = Caller(glance)
    return callers


@pytest.fixture
def image(people):
    """A private image of project A with data (the http location path is
    not needed: a file upload gives it a location)."""
    member = people['a_member']
    created = member('POST', '/v2/images', json={
        'name': 'private', 'visibility': 'private', 'disk_format': 'raw',
        'container_format': 'bare'})
    assert created.status_code == 201, created.text
    image_id = created.json()['id']
    uploaded = member('PUT', '/v2/images/%s/file' % image_id, data=b'x' * 64,
                      headers={'Content-Type': 'application/octet-stream'})
    assert uploaded.status_code == 204, uploaded.text
    return image_id


def test_no_token_is_401_but_versions_answer(people):
    anonymous = people['anonymous']
    assert anonymous('GET', '/v2/images').status_code == 401
    assert anonymous('POST', '/v2/images', json={}).status_code == 401
    versions = anonymous('GET', '/versions')
    assert versions.status_code == 200
    assert 'versions' in versions.json()


def test_invalid_token_is_401(glance):
    caller = Caller(glance, token='not-a-token-%s' % uuid.uuid4().hex)
    assert caller('GET', '/v2/images').status_code == 401


def test_real_token_lists_and_creates_in_its_project(people, image):
    member = people['a_member']
    listed = member('GET', '/v2/images')
    assert listed.status_code == 200, listed.text
    assert image in [i['id'] for i in listed.json()['images']]
    shown = member('GET', '/v2/images/%s' % image).json()
    assert shown['owner'] == member.project_id


@pytest.mark.parametrize('caller, get, patch, delete', [
    ('a_reader', 200, 403, 403),
    ('b_member', 404, 404, 404),
    ('b_admin', 200, 200, None),
])
def test_roles_and_project_of_the_token_drive_policy(people, image, caller,
                                                     get, patch, delete):
    who = people[caller]
    path = '/v2/images/%s' % image
    assert who('GET', path).status_code == get
    changed = who.patch(path, [{'op': 'add', 'path': '/x', 'value': 'y'}])
    assert changed.status_code == patch, changed.text
    if delete is not None:
        assert who('DELETE', path).status_code == delete
    assert people['a_member']('GET', path).status_code == 200


def test_reader_cannot_create_nor_upload(people, image):
    reader = people['a_reader']
    assert reader('POST', '/v2/images', json={}).status_code == 403
    uploaded = reader('PUT', '/v2/images/%s/file' % image, data=b'x',
                      headers={'Content-Type': 'application/octet-stream'})
    assert uploaded.status_code == 403


def test_member_creates_only_for_its_own_project(people):
    member = people['a_member']
    other = people['b_member'].project_id
    assert member('POST', '/v2/images',
                  json={'owner': other}).status_code == 403


def test_only_admin_publicizes(people, image):
    make_public = [{'op': 'replace', 'path': '/visibility',
                    'value': 'public'}]
    path = '/v2/images/%s' % image
    assert people['a_member'].patch(path, make_public).status_code == 403
    assert people['b_admin'].patch(path, make_public).status_code == 200
    assert people['b_member']('GET', path).status_code == 200


def test_admin_deletes_another_projects_image(people, image):
    path = '/v2/images/%s' % image
    assert people['b_admin']('DELETE', path).status_code == 204
    assert people['a_member']('GET', path).status_code == 404


def test_service_role_fetches_locations(people, image):
    path = '/v2/images/%s/locations' % image
    assert people['a_member']('GET', path).status_code == 403
    fetched = people['service']('GET', path)
    assert fetched.status_code == 200, fetched.text
    assert [loc['url'][:7] for loc in fetched.json()] == ['file://']


def test_tasks_api_is_for_admins(people):
    assert people['a_member']('GET', '/v2/tasks').status_code == 403
    listed = people['b_admin']('GET', '/v2/tasks')
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize('token', [True, False])
def test_over_long_request_id_is_431(people, token):
    caller = people['a_member' if token else 'anonymous']
    answer = caller('GET', '/v2/images',
                    headers={'X-OpenStack-Request-ID': 'req-' + 'a' * 100})
    assert answer.status_code == 431
    assert answer.headers['x-openstack-request-id'].startswith('req-')


def test_request_id_is_echoed(people):
    given = 'req-%s' % uuid.uuid4()
    answer = people['a_member']('GET', '/v2/images',
                                headers={'X-OpenStack-Request-ID': given})
    assert answer.status_code == 200
    assert answer.headers['x-openstack-request-id'] == given


def test_anonymous_access_is_read_only(people, tmp_path):
    server = harness.start_glance(
        tmp_path, {'DEFAULT': {'allow_anonymous_access': True}})
    try:
        anonymous = Caller(server)
        assert anonymous('GET', '/v2/schemas/image').status_code == 200
        # Read-only, and without roles the default policies give it little.
        assert anonymous('GET', '/v2/images').status_code == 403
        for method, path in (('POST', '/v2/images'),
                             ('DELETE', '/v2/images/%s' % uuid.uuid4()),
                             ('PATCH', '/v2/images/%s' % uuid.uuid4())):
            refused = anonymous(method, path, json={})
            assert refused.status_code == 403, (method, refused.text)
            assert 'Read-only access' in refused.text
        member = Caller(server, people['a_member'].headers['X-Auth-Token'])
        assert member('POST', '/v2/images', json={}).status_code == 201
    finally:
        server.stop()
