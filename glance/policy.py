"""Policy checks for the API controllers.

Rules and defaults live in ``glance.policies``; operators override them in
``[oslo_policy] policy_file`` (policy.yaml), which oslo.policy re-reads
when it changes.
"""

import time

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from glance import policies
from glance.common import exception

CONF = cfg.CONF
# How often the policy files are looked at for changes.
FILE_CHECK_SECONDS = 1.0

_enforcer = None


class _Enforcer(oslo_policy.Enforcer):
    """Looks for changed policy files at most every FILE_CHECK_SECONDS.

    oslo.policy looks on every check: a search of the config directories
    for the file and for policy.d, then a pass over every registered rule.
    An image list checks get_image on each image it returns, so that was
    most of a list request's time."""

    _next_file_check = 0.0

    def load_rules(self, force_reload=False):
        now = time.monotonic()
        if force_reload or not self.rules or now >= self._next_file_check:
            super().load_rules(force_reload)
            self._next_file_check = now + FILE_CHECK_SECONDS


def enforcer():
    """The process-wide Enforcer, built on first use."""
    global _enforcer
    if _enforcer is None:
        _enforcer = policies.new_enforcer(CONF, _Enforcer)
    return _enforcer


def reset():
    """Forget the Enforcer and the rules it loaded (for tests)."""
    global _enforcer
    if _enforcer is not None:
        _enforcer.clear()
    _enforcer = None


def check(context, action, target):
    """Whether the rule named action allows context on target.

    ``context`` may also be its ``creds``, for many checks in a row. A token
    of a scope the rule does not accept (system, domain) is refused like any
    other failure.
    """
    return bool(enforcer().authorize(action, target, context))


def creds(context):
    """The context's values rules see, taken once: oslo.policy takes them
    again on every check it is given the context itself for."""
    return dict(context.to_policy_values())


def authorize(context, action, target):
    """Raise Forbidden unless the rule named action allows it."""
    if not check(context, action, target):
        raise exception.Forbidden(
            f'You are not authorized to complete {action} action.')


def image_target(image, member=None):
    """The target image rules are checked against.

    image: mapping of the image's attributes ("id" or "image_id", "owner",
    "visibility", ...) with its extra properties merged in, attributes
    winning. member: the caller's project when it sees the image through a
    membership.
    """
    target = dict(image)
    image_id = target.get('id', target.get('image_id'))
    # Set last so that an extra property cannot pose as one of these.
    target.update(id=image_id, image_id=image_id,
                  project_id=target.get('owner'),
                  member=member, member_id=member)
    return target
