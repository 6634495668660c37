"""Small helpers used across layers."""

from oslo_utils import timeutils


def utcnow():
    """Naive UTC, second precision: what every timestamp column holds."""
    return timeutils.utcnow().replace(microsecond=0)
