"""oslo.policy defaults: upstream Glance's rule names and check strings.

Entry points `oslo.policy.policies` and `oslo.policy.enforcer` point here,
for oslopolicy-sample-generator and the other oslopolicy-* tools.
"""

import itertools

from oslo_config import cfg
from oslo_policy import policy

from glance.policies import base, cache, discovery, image, metadef, tasks


def list_rules():
    """Every default rule, in the order the sample file shows them."""
    return list(itertools.chain(base.rules, image.rules, tasks.rules,
                                metadef.rules, cache.rules,
                                discovery.rules))


def new_enforcer(conf, cls=policy.Enforcer):
    """An Enforcer reading `[oslo_policy]` from conf, defaults registered."""
    enforcer = cls(conf)
    # With enforce_new_defaults=False oslo.policy warns about every rule
    # whose default changed, which is nearly all of them.
    enforcer.suppress_default_change_warnings = True
    enforcer.register_defaults(list_rules())
    return enforcer


def get_enforcer():
    """For the oslopolicy-* tools only: they don't parse glance's CONF."""
    cfg.CONF([], project='glance')
    return new_enforcer(cfg.CONF)
