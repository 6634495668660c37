"""The shared acceptance harness (``../shared/acceptance``) for our tests:
its keystone, and glance-api configured to use it.

Everything lives in one cache directory (``GLANCE_TEST_HARNESS_DIR``,
default ``~/.cache/glance-test-harness``) whose virtualenvs ``setup.sh``
makes once. Keystone and the harness's image server get their own ports
(``GLANCE_TEST_KEYSTONE_PORT``, ``GLANCE_TEST_IMAGE_PORT``), so that a
harness someone runs by hand on the default ports is left alone.

Keystone is shared by every test process: each holds a shared lock on
``keystone.users`` while it uses it; the process that started keystone
stops it once it can take the lock exclusively, i.e. when the last user
is done.
"""

import contextlib
import fcntl
import json
import os
import subprocess
import urllib.request

from tests.conftest import SHARED_DIR
from tests.conftest import require
from tests.functional.conftest import GlanceServer

HARNESS = os.path.join(SHARED_DIR, 'acceptance')
DIR = os.environ.get('GLANCE_TEST_HARNESS_DIR', os.path.join(
    os.path.expanduser('~'), '.cache', 'glance-test-harness'))
KEYSTONE_PORT = int(os.environ.get('GLANCE_TEST_KEYSTONE_PORT', '15100'))
IMAGE_PORT = int(os.environ.get('GLANCE_TEST_IMAGE_PORT', '29180'))
KEYSTONE_URL = 'http://127.0.0.1:%d' % KEYSTONE_PORT
ADMIN_PASSWORD = 'AcceptanceAdmin1'
SERVICE_PASSWORD = 'AcceptanceGlance1'
SETUP_TIMEOUT = 1200


def harness_env(**extra):
    env = dict(os.environ, KEYSTONE_PORT=str(KEYSTONE_PORT),
               HTTP_IMAGE_PORT=str(IMAGE_PORT), SKIP_UPSTREAM_GLANCE='1')
    env.update(extra)
    return env


def _script(name, *args, timeout=300, **env):
    return subprocess.run([os.path.join(HARNESS, name), *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=harness_env(**env), stdin=subprocess.DEVNULL)


def setup():
    """The harness's virtualenvs in DIR (a few minutes the first time)."""
    require(os.path.exists(os.path.join(HARNESS, 'setup.sh')),
            'no acceptance harness at %s (set GLANCE_SHARED_DIR)' % HARNESS)
    os.makedirs(DIR, exist_ok=True)
    with _locked('setup.lock', fcntl.LOCK_EX):
        try:
            result = _script('setup.sh', DIR, timeout=SETUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            require(False, 'harness setup.sh timed out')
        require(result.returncode == 0, 'harness setup.sh %s failed:\n%s'
                % (DIR, result.stderr[-3000:]))


@contextlib.contextmanager
def _locked(name, mode):
    with open(os.path.join(DIR, name), 'a') as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _keystone_running():
    return _script('keystone.sh', 'status', DIR).returncode == 0


@contextlib.contextmanager
def keystone():
    """Keystone on KEYSTONE_PORT for the duration of the block."""
    setup()
    users = open(os.path.join(DIR, 'keystone.users'), 'a')
    fcntl.flock(users, fcntl.LOCK_SH)
    started = False
    try:
        with _locked('keystone.lock', fcntl.LOCK_EX):
            if not _keystone_running():
                result = _script('keystone.sh', 'start', DIR)
                require(result.returncode == 0, 'harness keystone did not '
                        'start:\n%s' % result.stderr[-3000:])
                started = True
        yield KEYSTONE_URL
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        if started:
            # Waits for the other processes still using it.
            fcntl.flock(users, fcntl.LOCK_EX)
            _script('keystone.sh', 'stop', DIR)
        users.close()


def start_glance(base_dir, options=None):
    """Our glance-api with the keystone flavor, as the harness wants it."""
    sections = {
        'DEFAULT': {'show_multiple_locations': True,
                    'hashing_algorithm': 'sha512'},
        'glance_store': {'stores': 'file,http', 'default_store': 'file'},
        'paste_deploy': {'flavor': 'keystone'},
        'keystone_authtoken': {
            'www_authenticate_uri': KEYSTONE_URL, 'auth_url': KEYSTONE_URL,
            'auth_type': 'password', 'user_domain_name': 'Default',
            'project_domain_name': 'Default', 'project_name': 'service',
            'username': 'glance', 'password': SERVICE_PASSWORD,
            'region_name': 'RegionOne',
            'service_token_roles_required': True},
        'import_filtering_opts': {
            'allowed_hosts': '[127.0.0.1]',
            'allowed_ports': '[80,443,%d]' % IMAGE_PORT},
    }
    for section, values in (options or {}).items():
        sections.setdefault(section, {}).update(values)
    return GlanceServer(base_dir, sections).start()


class Identity:
    """Keystone's v3 API as its admin: projects, users, roles, tokens."""

    def __init__(self, url=KEYSTONE_URL):
        self.url = url
        self.admin_token = self.token('admin', ADMIN_PASSWORD, 'admin')
        self.roles = {r['name']: r['id']
                      for r in self._call('GET', '/v3/roles')[0]['roles']}

    def _call(self, method, path, body=None, as_admin=True):
        headers = {'Content-Type': 'application/json'}
        if as_admin:
            headers['X-Auth-Token'] = self.admin_token
        request = urllib.request.Request(
            self.url + path, method=method, headers=headers,
            data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b'null'), response.headers

    def token(self, user, password, project):
        """A project-scoped token, by names in the Default domain."""
        _, headers = self._call('POST', '/v3/auth/tokens', {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': user, 'domain': {'id': 'default'},
                'password': password}}},
            'scope': {'project': {'name': project,
                                  'domain': {'id': 'default'}}}}},
            as_admin=False)
        return headers['X-Subject-Token']

    def project(self, name):
        body, _ = self._call('POST', '/v3/projects', {'project': {
            'name': name, 'domain_id': 'default'}})
        return body['project']['id']

    def user(self, name, password, project_id, roles):
        """A user with ``roles`` (names) on a project."""
        body, _ = self._call('POST', '/v3/users', {'user': {
            'name': name, 'password': password, 'domain_id': 'default',
            'default_project_id': project_id}})
        for role in roles:
            self._call('PUT', '/v3/projects/%s/users/%s/roles/%s' % (
                project_id, body['user']['id'], self.roles[role]))
        return body['user']['id']
