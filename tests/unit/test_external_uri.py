"""Which URLs glance may fetch ([import_filtering_opts])."""

import pytest

from glance.common import external_uri


@pytest.mark.parametrize('uri, allowed', [
    ('http://192.0.2.10/image', True),
    ('https://192.0.2.10:443/image', True),
    ('http://192.0.2.10:8080/image', False),   # default ports: 80, 443
    ('ftp://192.0.2.10/image', False),          # default schemes: http(s)
    ('http://127.0.0.1/image', False),          # loopback
    ('http://[::1]/image', False),
    ('http://[::ffff:127.0.0.1]/image', False),  # loopback, IPv4-mapped
    ('http://169.254.169.254/latest', False),   # link-local: metadata
    ('http://localhost/image', False),          # resolves to loopback
    ('http://2130706433/image', False),         # 127.0.0.1 in disguise
    ('http://127.1/image', False),
    ('http://no-such-host.invalid/image', False),
    ('http:///image', False),
    ('not a url', False),
    ('http://192.0.2.10:99999/image', False),   # no such port
])
def test_defaults(conf, uri, allowed):
    assert external_uri.is_allowed(uri) is allowed


def test_an_allowed_host_may_be_loopback_on_an_allowed_port(conf):
    conf.set('allowed_hosts', ['127.0.0.1'], group='import_filtering_opts')
    conf.set('allowed_ports', [29080], group='import_filtering_opts')
    assert external_uri.is_allowed('http://127.0.0.1:29080/cirros.qcow2')
    assert not external_uri.is_allowed('http://127.0.0.1:29081/x')
    assert not external_uri.is_allowed('http://192.0.2.10:29080/x')


def test_allowed_lists_win_over_disallowed_ones(conf):
    conf.set('allowed_schemes', ['https'], group='import_filtering_opts')
    conf.set('disallowed_schemes', ['https'], group='import_filtering_opts')
    assert external_uri.is_allowed('https://192.0.2.10/x')
    assert not external_uri.is_allowed('http://192.0.2.10/x')


def test_disallowed_hosts_and_ports(conf):
    conf.set('allowed_ports', [], group='import_filtering_opts')
    conf.set('disallowed_ports', [8080], group='import_filtering_opts')
    conf.set('disallowed_hosts', ['192.0.2.10'],
             group='import_filtering_opts')
    assert external_uri.is_allowed('http://192.0.2.11:9000/x')
    assert not external_uri.is_allowed('http://192.0.2.11:8080/x')
    assert not external_uri.is_allowed('http://192.0.2.10/x')
