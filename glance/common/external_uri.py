"""Which external URLs glance may fetch (``[import_filtering_opts]``).

Glance fetches URLs that clients name (add-location URLs, ``import_from``
of tasks), so a client could make it reach hosts only glance can reach:
the cloud's metadata service, services on loopback. A URL passes when its
scheme, host and port pass the allowed/disallowed lists and every address
its host resolves to is acceptable: loopback and link-local addresses only
for a host explicitly allowed.
"""

import ipaddress
import socket
import urllib.parse

from oslo_config import cfg

CONF = cfg.CONF

DEFAULT_PORTS = {'http': 80, 'https': 443}


def _passes(value, allowed, disallowed):
    # Upstream rule: when both lists are set only the allowed one counts.
    if allowed:
        return value in allowed
    return value not in disallowed


def _host_name(host):
    """The host in canonical form, or None for names that are IPs in
    disguise (``2130706433``, ``127.1``, ``0x7f.1``) or do not resolve."""
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if all(c.isdigit() or c == '.' for c in host):
        return None
    return host


def _addresses(host, port):
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        # The trailing dot makes it a DNS lookup, never inet_aton parsing.
        infos = socket.getaddrinfo(host.rstrip('.') + '.', port)
    except (socket.gaierror, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split('%')[0])
            for info in infos]


def is_allowed(uri):
    """Whether glance may fetch ``uri``."""
    opts = CONF.import_filtering_opts
    try:
        parsed = urllib.parse.urlparse(uri)
        port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    except ValueError:
        return False
    host = _host_name(parsed.hostname)
    if not (parsed.scheme and host
            and _passes(parsed.scheme, opts.allowed_schemes,
                        opts.disallowed_schemes)
            and _passes(host, opts.allowed_hosts, opts.disallowed_hosts)
            and (parsed.port is None
                 or _passes(parsed.port, opts.allowed_ports,
                            opts.disallowed_ports))):
        return False
    addresses = _addresses(host, port)
    if host in opts.allowed_hosts:
        return bool(addresses)
    blocked = set()
    for name in opts.disallowed_hosts if not opts.allowed_hosts else ():
        try:
            blocked.add(ipaddress.ip_address(name))
        except ValueError:
            pass
    return bool(addresses) and not any(
        _mapped(addr).is_loopback or _mapped(addr).is_link_local
        or addr in blocked for addr in addresses)


def _mapped(address):
    """IPv4 inside an IPv4-mapped IPv6 address, else the address."""
    return getattr(address, 'ipv4_mapped', None) or address
