"""Maps ``/v2.N/...`` (or an ``Accept`` media-type version) to ``/v2/...``.

A path naming a version this site doesn't offer gets the version document
with 300 Multiple Choices, as upstream answers.
"""

import re

import webob.dec
import webob.exc

from glance.api import versions

_VERSIONED_PATH = re.compile(r'^/v(\d+)(?:\.(\d+))?(/.*)?$')
_ACCEPT_VERSION = re.compile(
    r'application/vnd\.openstack\.images-v(\d+)(?:\.(\d+))?')


def _offered(major, minor):
    return major == '2' and (minor is None
                             or int(minor) in versions.advertised_minors())


class VersionNegotiationFilter:

    def __init__(self, app):
        self.app = app

    @classmethod
    def factory(cls, global_conf=None, **local_conf):
        return cls

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            path = req.path_info
        except UnicodeDecodeError:
            return webob.exc.HTTPBadRequest(
                explanation='The URL is not valid UTF-8.')
        # Answered here, before any auth filter: discovery needs no token.
        if path in ('', '/'):
            return versions.response(req, 300)
        if path.rstrip('/') == '/versions':
            return versions.response(req, 200)
        match = _VERSIONED_PATH.match(path)
        if match is None:
            accept = _ACCEPT_VERSION.search(req.headers.get('Accept', ''))
            if accept is None or not _offered(*accept.groups()):
                return versions.response(req, 300)
            req.path_info = '/v2' + path
        elif _offered(match.group(1), match.group(2)):
            req.path_info = '/v2' + (match.group(3) or '')
        else:
            return versions.response(req, 300)
        return req.get_response(self.app)
