"""Image members (sharing) and tags over raw HTTP (reference
glance-compat.md §3.9, §3.10, §3.14).

The owner and the members are different projects (identity headers, see
tests/functional/helpers.py).
"""

import pytest

from tests.functional import helpers
from tests.functional.helpers import Api
from tests.functional.helpers import error_text

server = helpers.server
quota_glance = helpers.shared_server('quota_glance', helpers.QUOTA_OPTIONS)


@pytest.fixture
def member(server):
    return Api(server, helpers.new_project())


@pytest.fixture
def stranger(server):
    return Api(server, helpers.new_project())


def members_path(image_id, member_id=None):
    path = f'/v2/images/{image_id}/members'
    return path + f'/{member_id}' if member_id else path


def add_member(api, image_id, member_id):
    return api.post(members_path(image_id), json={'member': member_id})


def set_status(api, image_id, member_id, status):
    return api.put(members_path(image_id, member_id), json={'status': status})


# --------------------------------------------------------------- members


def test_add_member_is_200_with_member_object(server, owner, member):
    image = owner.create(name='to share')
    resp = add_member(owner, image['id'], member.project)
    assert resp.status_code == 200, error_text(resp)
    body = resp.json()
    assert body['member_id'] == member.project
    assert body['image_id'] == image['id']
    assert body['status'] == 'pending'
    assert body['schema'] == '/v2/schemas/member'
    assert helpers.TIMESTAMP.match(body['created_at'])
    assert helpers.TIMESTAMP.match(body['updated_at'])
    rows = helpers.db_rows(
        server, 'SELECT member, status, deleted FROM image_members '
        'WHERE image_id = ?', image['id'])
    assert rows == [{'member': member.project, 'status': 'pending',
                     'deleted': 0}]


def test_duplicate_member_is_409(owner, member):
    image = owner.create()
    assert add_member(owner, image['id'], member.project).status_code == 200
    resp = add_member(owner, image['id'], member.project)
    assert resp.status_code == 409, error_text(resp)


@pytest.mark.parametrize('visibility', ['private', 'public', 'community'])
def test_only_shared_images_have_members(server, owner, member, visibility):
    api = Api(server) if visibility == 'public' else owner
    image = api.create(visibility=visibility)
    resp = add_member(api, image['id'], member.project)
    assert resp.status_code == 403, error_text(resp)
    resp = api.get(members_path(image['id']))
    assert resp.status_code == 403, error_text(resp)


@pytest.mark.parametrize('body', [{}, {'member': ''}, [], [1],
                                  {'members': 'x'}])
def test_add_member_bad_body_is_400(owner, body):
    image = owner.create()
    resp = owner.post(members_path(image['id']), json=body)
    assert resp.status_code == 400, error_text(resp)


def test_add_member_broken_json_is_400(owner):
    image = owner.create()
    resp = owner.post(members_path(image['id']), data='{"member": ',
                      headers={'Content-Type': 'application/json'})
    assert resp.status_code == 400, error_text(resp)


def test_list_and_show_members(owner, member, stranger):
    image = owner.create()
    second = helpers.new_project()
    add_member(owner, image['id'], member.project)
    add_member(owner, image['id'], second)
    resp = owner.get(members_path(image['id']))
    assert resp.status_code == 200, error_text(resp)
    body = resp.json()
    assert body['schema'] == '/v2/schemas/members'
    assert sorted(m['member_id'] for m in body['members']) == sorted(
        [member.project, second])
    # A member sees the member list too; a stranger does not see the image.
    assert member.get(members_path(image['id'])).status_code == 200
    assert stranger.get(members_path(image['id'])).status_code == 404
    # One member.
    resp = owner.get(members_path(image['id'], member.project))
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['member_id'] == member.project
    resp = member.get(members_path(image['id'], member.project))
    assert resp.status_code == 200, error_text(resp)
    resp = owner.get(members_path(image['id'], 'not-a-member'))
    assert resp.status_code == 404, error_text(resp)
    resp = member.get(members_path(image['id'], second))
    assert resp.status_code == 404, error_text(resp)


def test_members_of_absent_images_are_404(owner, member):
    image = owner.create()
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    for image_id in (image['id'], '00000000-0000-0000-0000-000000000000',
                     'not-a-uuid'):
        assert owner.get(members_path(image_id)).status_code == 404
        assert add_member(owner, image_id, member.project).status_code == 404


def test_member_sets_own_status_owner_may_not(owner, member):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    resp = set_status(owner, image['id'], member.project, 'accepted')
    assert resp.status_code == 403, error_text(resp)
    for status in ('accepted', 'rejected', 'pending', 'accepted'):
        resp = set_status(member, image['id'], member.project, status)
        assert resp.status_code == 200, (status, error_text(resp))
        assert resp.json()['status'] == status
        assert resp.json()['member_id'] == member.project
    resp = owner.get(members_path(image['id'], member.project))
    assert resp.json()['status'] == 'accepted'


@pytest.mark.parametrize('body', [{'status': 'bogus'}, {'status': ''},
                                  {'status': 5}, {}, [], {'state': 'x'}])
def test_bad_member_status_is_400(owner, member, body):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    resp = member.put(members_path(image['id'], member.project), json=body)
    assert resp.status_code == 400, error_text(resp)
    resp = owner.get(members_path(image['id'], member.project))
    assert resp.json()['status'] == 'pending'


def test_status_of_someone_else_or_nobody(owner, member, stranger):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    # A stranger cannot see the image at all.
    resp = set_status(stranger, image['id'], member.project, 'accepted')
    assert resp.status_code == 404, error_text(resp)
    resp = set_status(stranger, image['id'], stranger.project, 'accepted')
    assert resp.status_code == 404, error_text(resp)
    resp = set_status(member, image['id'], 'not-a-member', 'accepted')
    assert resp.status_code in (403, 404), error_text(resp)


def test_only_the_owner_adds_or_removes_members(owner, member, stranger):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    resp = add_member(member, image['id'], stranger.project)
    assert resp.status_code == 403, error_text(resp)
    resp = add_member(stranger, image['id'], stranger.project)
    assert resp.status_code == 404, error_text(resp)
    resp = member.delete(members_path(image['id'], member.project))
    assert resp.status_code == 403, error_text(resp)
    resp = owner.delete(members_path(image['id'], member.project))
    assert resp.status_code == 204, error_text(resp)
    resp = owner.delete(members_path(image['id'], member.project))
    assert resp.status_code == 404, error_text(resp)
    # Removed: the former member no longer sees the image.
    assert member.get(f"/v2/images/{image['id']}").status_code == 404


def test_member_may_readd_after_removal(server, owner, member):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    owner.delete(members_path(image['id'], member.project))
    resp = add_member(owner, image['id'], member.project)
    assert resp.status_code == 200, error_text(resp)
    assert resp.json()['status'] == 'pending'
    live = helpers.db_rows(
        server, 'SELECT status FROM image_members WHERE image_id = ? '
        'AND deleted = 0', image['id'])
    assert live == [{'status': 'pending'}]


def test_member_sees_image_in_lists_only_when_accepted(owner, member,
                                                       stranger):
    """A shared image is in the member's default list only once accepted;
    member_status selects others; the member may GET it in any status."""
    suite = helpers.new_project()
    image = owner.create(name='shared one', suite=suite)

    def listed(api, extra=''):
        return api.list_ids(f'?suite={suite}{extra}')

    add_member(owner, image['id'], member.project)
    assert listed(member) == []
    assert listed(member, '&member_status=pending') == [image['id']]
    assert listed(member, '&member_status=all') == [image['id']]
    assert listed(member, '&member_status=accepted') == []
    assert member.get(f"/v2/images/{image['id']}").status_code == 200

    set_status(member, image['id'], member.project, 'accepted')
    assert listed(member) == [image['id']]
    assert listed(member, '&visibility=shared') == [image['id']]
    assert listed(member, '&member_status=pending') == []

    set_status(member, image['id'], member.project, 'rejected')
    assert listed(member) == []
    assert listed(member, '&member_status=rejected') == [image['id']]
    assert listed(member, '&member_status=all') == [image['id']]
    assert member.get(f"/v2/images/{image['id']}").status_code == 200

    # Strangers see nothing whatever the filter; the owner always sees it.
    assert listed(stranger, '&member_status=all') == []
    assert listed(stranger, '&visibility=shared') == []
    assert listed(owner) == [image['id']]

    resp = member.get('/v2/images?member_status=bogus')
    assert resp.status_code == 400, error_text(resp)


def test_member_downloads_shared_image(owner, member):
    image = owner.create_active(data=b'shared data')
    add_member(owner, image['id'], member.project)
    set_status(member, image['id'], member.project, 'accepted')
    resp = member.download(image['id'])
    assert resp.status_code == 200, error_text(resp)
    assert resp.content == b'shared data'


def test_making_image_private_hides_it_from_members(owner, member):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    set_status(member, image['id'], member.project, 'accepted')
    resp = owner.update(image['id'], [{'op': 'replace', 'path': '/visibility',
                                       'value': 'private'}])
    assert resp.status_code == 200, error_text(resp)
    assert member.get(f"/v2/images/{image['id']}").status_code == 404
    assert owner.get(members_path(image['id'])).status_code == 403


def test_member_quota(quota_glance):
    """image_member_quota=2: the third member is 413."""
    owner = Api(quota_glance, helpers.new_project())
    image = owner.create()
    for _ in range(2):
        resp = add_member(owner, image['id'], helpers.new_project())
        assert resp.status_code == 200, error_text(resp)
    resp = add_member(owner, image['id'], helpers.new_project())
    assert resp.status_code == 413, error_text(resp)
    assert len(owner.get(members_path(image['id'])).json()['members']) == 2


# ------------------------------------------------------------------ tags


def tag_path(image_id, tag):
    return f'/v2/images/{image_id}/tags/{tag}'


def test_add_and_delete_tags(server, owner):
    image = owner.create()
    resp = owner.put(tag_path(image['id'], 'ubuntu'))
    assert resp.status_code == 204, error_text(resp)
    assert resp.content == b''
    # Idempotent.
    assert owner.put(tag_path(image['id'], 'ubuntu')).status_code == 204
    assert owner.put(tag_path(image['id'], 'lts')).status_code == 204
    assert sorted(owner.show(image['id'])['tags']) == ['lts', 'ubuntu']
    rows = helpers.db_rows(
        server, 'SELECT value FROM image_tags WHERE image_id = ? '
        'AND deleted = 0 ORDER BY value', image['id'])
    assert rows == [{'value': 'lts'}, {'value': 'ubuntu'}]
    assert owner.list_ids(owner=owner.project, tag='lts') == [image['id']]

    resp = owner.delete(tag_path(image['id'], 'ubuntu'))
    assert resp.status_code == 204, error_text(resp)
    assert owner.show(image['id'])['tags'] == ['lts']
    resp = owner.delete(tag_path(image['id'], 'ubuntu'))
    assert resp.status_code == 404, error_text(resp)
    resp = owner.delete(tag_path(image['id'], 'never-there'))
    assert resp.status_code == 404, error_text(resp)


def test_tag_with_escaped_characters(owner):
    """Percent-escapes in the path are decoded. (Non-ASCII tags: upstream
    decodes the path as latin-1 and stores mojibake, so only a PUT/DELETE
    round trip is checked for them.)"""
    image = owner.create()
    assert owner.put(tag_path(image['id'], 'a%20b')).status_code == 204
    assert owner.show(image['id'])['tags'] == ['a b']
    assert owner.put(tag_path(image['id'], 'caf%C3%A9')).status_code == 204
    assert len(owner.show(image['id'])['tags']) == 2
    assert owner.delete(tag_path(image['id'], 'caf%C3%A9')).status_code == 204
    assert owner.show(image['id'])['tags'] == ['a b']


def test_tag_too_long_is_400(owner):
    image = owner.create()
    resp = owner.put(tag_path(image['id'], 'x' * 256))
    assert resp.status_code == 400, error_text(resp)
    assert owner.put(tag_path(image['id'], 'x' * 255)).status_code == 204
    assert owner.show(image['id'])['tags'] == ['x' * 255]


def test_tags_of_others_and_absent_images(owner, member, stranger):
    image = owner.create()
    add_member(owner, image['id'], member.project)
    assert member.put(tag_path(image['id'], 't')).status_code == 403
    assert stranger.put(tag_path(image['id'], 't')).status_code == 404
    assert owner.put(tag_path(image['id'], 't')).status_code == 204
    assert member.delete(tag_path(image['id'], 't')).status_code == 403
    assert stranger.delete(tag_path(image['id'], 't')).status_code == 404
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    for image_id in (image['id'], '00000000-0000-0000-0000-000000000000',
                     'not-a-uuid'):
        assert owner.put(tag_path(image_id, 't')).status_code == 404
        assert owner.delete(tag_path(image_id, 't')).status_code == 404


def test_tag_quota(quota_glance):
    """image_tag_quota=2: a third tag by PUT, create or PATCH is 413."""
    api = Api(quota_glance, helpers.new_project())
    resp = api.post('/v2/images', json={'tags': ['a', 'b', 'c']})
    assert resp.status_code == 413, error_text(resp)
    image = api.create(tags=['a'])
    assert api.put(tag_path(image['id'], 'b')).status_code == 204
    resp = api.put(tag_path(image['id'], 'c'))
    assert resp.status_code == 413, error_text(resp)
    # Re-adding an existing tag is not a new one.
    assert api.put(tag_path(image['id'], 'b')).status_code == 204
    resp = api.update(image['id'], [{'op': 'replace', 'path': '/tags',
                                     'value': ['x', 'y', 'z']}])
    assert resp.status_code == 413, error_text(resp)
    assert sorted(api.show(image['id'])['tags']) == ['a', 'b']
