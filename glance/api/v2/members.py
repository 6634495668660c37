"""Image members: sharing an image with other projects."""

from glance.api import common
from glance.api.v2.images import timestamp
from glance.common import exception
from glance import domain
from glance import gateway
from glance import policy
from glance import quota


def member_view(member):
    return {'member_id': member.member_id, 'image_id': member.image_id,
            'status': member.status,
            'created_at': timestamp(member.created_at),
            'updated_at': timestamp(member.updated_at),
            'schema': '/v2/schemas/member'}


def _shared_image(req, image_id, action, member_id=None):
    """The image and its member repo, after checking ``action`` with the
    member concerned in the target."""
    ctx = common.context(req)
    _repo, image = common.find_image(req, image_id)
    target = common.policy_target(image)
    if member_id is not None:
        target.update(member_id=member_id, member=member_id)
    if not policy.check(ctx, action, target):
        if action.startswith('get_'):
            raise exception.NotFound('Member %s not found.' % member_id
                                     if member_id else 'Image not found.')
        policy.authorize(ctx, action, target)
    if image.visibility != 'shared':
        raise exception.Forbidden('Only shared images have members.')
    return image, gateway.member_repo(image)


@common.no_body
def index(req, image_id):
    _image, members = _shared_image(req, image_id, 'get_members')
    return common.json_response({
        'members': [member_view(m) for m in members.list()],
        'schema': '/v2/schemas/members'})


def create(req, image_id):
    body = common.json_body(req)
    member_id = body.get('member')
    if not isinstance(member_id, str) or not member_id.strip():
        raise exception.Invalid('The "member" field must be a non-empty '
                                'string.')
    if len(member_id) > 255:
        raise exception.Invalid('Member ids are at most 255 characters.')
    image, members = _shared_image(req, image_id, 'add_member')
    quota.check_members(len(members.list()) + 1)
    member = domain.new_member(image, member_id)
    members.add(member)
    return common.json_response(member_view(member))


@common.no_body
def show(req, image_id, member_id):
    _image, members = _shared_image(req, image_id, 'get_member', member_id)
    return common.json_response(member_view(members.get(member_id)))


def update(req, image_id, member_id):
    body = common.json_body(req)
    if 'status' not in body:
        raise exception.Invalid('Status not specified.')
    _image, members = _shared_image(req, image_id, 'modify_member',
                                    member_id)
    member = members.get(member_id)
    member.status = body['status']
    members.save(member)
    return common.json_response(member_view(member))


@common.no_body
def delete(req, image_id, member_id):
    _image, members = _shared_image(req, image_id, 'delete_member',
                                    member_id)
    members.remove(members.get(member_id))
    return common.no_content()
