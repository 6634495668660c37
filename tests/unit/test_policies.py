"""Real oslo.policy decisions for the default rules and for overrides."""

import os
import time

import pytest
from oslo_config import cfg

from glance import context, policies, policy
from glance.common import config, exception

CONF = cfg.CONF
OWNER = 'owner-project'
OTHER = 'other-project'


@pytest.fixture(autouse=True)
def policy_file(tmp_path):
    """A policy file path of our own, absent unless a test writes it."""
    config.parse_args([], 'glance-api', default_config_files=[])
    path = tmp_path / 'policy.yaml'
    CONF.set_override('policy_file', str(path), group='oslo_policy')
    policy.reset()
    yield path
    policy.reset()
    CONF.clear_override('policy_file', group='oslo_policy')


def ctx(project, *roles, **kwargs):
    return context.RequestContext(project_id=project, roles=list(roles),
                                  **kwargs)


def image(visibility='private', owner=OWNER, member=None):
    return policy.image_target(
        {'id': 'an-image', 'owner': owner, 'visibility': visibility},
        member=member)


IMAGE_RULES = ['add_image', 'get_image', 'get_images', 'modify_image',
               'publicize_image', 'communitize_image', 'delete_image',
               'upload_image', 'download_image', 'deactivate', 'reactivate',
               'add_member', 'delete_member', 'get_member', 'get_members',
               'modify_member', 'copy_image', 'delete_image_location',
               'set_image_location', 'add_image_location',
               'fetch_image_location', 'stores_info_detail',
               'tasks_api_access', 'cache_image', 'add_metadef_namespace']


def test_every_rule_is_project_scoped_and_uniquely_named():
    rules = policies.list_rules()
    assert len({rule.name for rule in rules}) == len(rules)
    documented = [rule for rule in rules if hasattr(rule, 'operations')]
    assert all(rule.scope_types == ['project'] for rule in documented)


@pytest.mark.parametrize('rule', IMAGE_RULES)
def test_admin_of_any_project_may_do_everything(rule):
    assert policy.check(ctx(OTHER, 'admin'), rule, image())


@pytest.mark.parametrize('rule', IMAGE_RULES)
def test_no_auth_context_may_do_everything(rule):
    no_auth = context.RequestContext(
        project_id='default', roles=['admin', 'member', 'reader'],
        is_admin=True)
    assert policy.check(no_auth, rule, image(owner='default'))


def test_member_adds_images_to_own_project_only():
    member = ctx(OWNER, 'member', 'reader')
    assert policy.check(member, 'add_image', image())
    assert not policy.check(member, 'add_image', image(owner=OTHER))


def test_reader_reads_but_does_not_change():
    reader = ctx(OWNER, 'reader')
    for rule in ('get_image', 'get_images', 'get_members'):
        assert policy.check(reader, rule, image())
    for rule in ('modify_image', 'upload_image', 'delete_image',
                 'add_image', 'download_image'):
        assert not policy.check(reader, rule, image())


def test_only_admin_publicizes():
    assert policy.check(ctx(OWNER, 'admin'), 'publicize_image', image())
    assert not policy.check(ctx(OWNER, 'member', 'reader'),
                            'publicize_image', image())
    assert policy.check(ctx(OWNER, 'member', 'reader'),
                        'communitize_image', image())


def test_stores_info_detail_is_for_services_and_admins():
    assert policy.check(ctx('services', 'service'), 'stores_info_detail', {})
    assert policy.check(ctx(OWNER, 'admin'), 'stores_info_detail', {})
    assert not policy.check(ctx(OWNER, 'member', 'reader'),
                            'stores_info_detail', {})


@pytest.mark.parametrize('target', [
    image('public'), image('community'), image('shared', member=OTHER)])
def test_reader_of_another_project_gets_visible_images(target):
    assert policy.check(ctx(OTHER, 'reader'), 'get_image', target)


def test_reader_of_another_project_cannot_get_private_image():
    assert not policy.check(ctx(OTHER, 'reader'), 'get_image', image())


def test_only_the_member_project_answers_a_share():
    shared = image('shared', member=OTHER)
    assert policy.check(ctx(OTHER, 'member'), 'modify_member', shared)
    assert not policy.check(ctx(OWNER, 'member'), 'modify_member',
                            image('shared'))


def test_extra_property_cannot_pose_as_project():
    target = policy.image_target({'owner': OWNER, 'project_id': OTHER,
                                  'visibility': 'private'})
    assert not policy.check(ctx(OTHER, 'member'), 'modify_image', target)


def test_system_scoped_token_is_refused():
    system_admin = context.RequestContext(system_scope='all',
                                          roles=['admin'])
    assert not policy.check(system_admin, 'get_images', image())


def test_authorize_raises_forbidden_naming_the_action():
    with pytest.raises(exception.Forbidden,
                       match='not authorized to complete modify_image'):
        policy.authorize(ctx(OTHER, 'member'), 'modify_image', image())
    policy.authorize(ctx(OWNER, 'member'), 'modify_image', image())


def test_policy_file_overrides_a_default(policy_file):
    member = ctx(OWNER, 'member', 'reader')
    assert not policy.check(member, 'publicize_image', image())
    policy_file.write_text(
        '"publicize_image": "role:member and project_id:%(project_id)s"\n')
    policy.reset()
    assert policy.check(member, 'publicize_image', image())
    assert not policy.check(ctx(OTHER, 'member'), 'publicize_image',
                            image())


def test_an_edited_policy_file_takes_effect_within_the_check_interval(
        policy_file):
    member = ctx(OWNER, 'member', 'reader')
    policy_file.write_text('"publicize_image": "!"\n')
    assert not policy.check(member, 'publicize_image', image())
    policy_file.write_text(
        '"publicize_image": "role:member and project_id:%(project_id)s"\n')
    os.utime(policy_file, (time.time() + 5, time.time() + 5))
    # Within the interval the loaded rules stand; after it, the edit.
    assert not policy.check(member, 'publicize_image', image())
    policy.enforcer()._next_file_check = 0.0  # the interval is over
    assert policy.check(member, 'publicize_image', image())
