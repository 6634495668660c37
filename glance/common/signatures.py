"""Function signatures looked up once.

oslo.policy reads the signature of every rule node's ``__call__`` on every
check (nine tenths of a check's time), and oslo.middleware that of each
middleware's ``process_response`` on every request. Neither ever changes,
so ``install()`` gives both libraries a ``getfullargspec`` that keeps its
answers. The cache holds the (bound) methods it answered for, so no id is
reused while they are in it.
"""

import functools
import inspect

from oslo_middleware import base as middleware_base
from oslo_policy import _checks

getfullargspec = functools.lru_cache(maxsize=1024)(inspect.getfullargspec)


class _InspectModule:
    """The inspect module, with the kept getfullargspec."""

    getfullargspec = staticmethod(getfullargspec)

    def __getattr__(self, name):
        return getattr(inspect, name)


def install():
    _checks.inspect = _InspectModule()
    middleware_base.getfullargspec = getfullargspec
