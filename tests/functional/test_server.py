"""The real glance-api process: version document, routing basics, request
ids, pre-fork workers, graceful shutdown, and failing cleanly on bad input.
"""

import json
import signal
import socket
import time
import uuid

import pytest
import requests

from tests.conftest import SERVER_DB_KINDS
from tests.functional.conftest import PASTE_INI
from tests.helpers import assert_one_line_error
from tests.helpers import free_port
from tests.helpers import run_command
from tests.helpers import write_conf

TIMEOUT = 30
# Offered without multi-store or cache configuration (reference §3.1).
DEFAULT_VERSIONS = {'v2.%d' % minor
                    for minor in (0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 17)}


def check_versions_document(response, base_url):
    assert response.headers['Content-Type'].startswith('application/json')
    versions = response.json()['versions']
    assert {v['id'] for v in versions} == DEFAULT_VERSIONS
    assert len(versions) == len(DEFAULT_VERSIONS)
    for version in versions:
        assert set(version) == {'id', 'status', 'links'}
        assert version['status'] == (
            'CURRENT' if version['id'] == 'v2.17' else 'SUPPORTED')
        assert version['links'] == [{'rel': 'self',
                                     'href': base_url + '/v2/'}]


def test_root_is_300_with_the_versions(glance):
    response = requests.get(glance.url + '/', timeout=TIMEOUT)
    assert response.status_code == 300
    check_versions_document(response, glance.url)


def test_versions_is_200(glance):
    response = requests.get(glance.url + '/versions', timeout=TIMEOUT)
    assert response.status_code == 200
    check_versions_document(response, glance.url)


@pytest.mark.parametrize('path', ['/v1/images', '/v3/', '/v2.8/images',
                                  '/v2.18/images', '/v2.99/images'])
def test_unknown_version_is_300(glance, path):
    response = requests.get(glance.url + path, timeout=TIMEOUT)
    assert response.status_code == 300
    check_versions_document(response, glance.url)


@pytest.mark.parametrize('minor', [0, 3, 9, 15, 17])
def test_advertised_minor_version_reaches_v2(glance, minor):
    plain = requests.get(glance.url + '/v2/images', timeout=TIMEOUT)
    versioned = requests.get(glance.url + '/v2.%d/images' % minor,
                             timeout=TIMEOUT)
    assert versioned.status_code != 300
    assert versioned.status_code == plain.status_code


def test_forwarded_host_is_used_in_links(glance):
    """http_proxy_to_wsgi is in the pipeline, as upstream's."""
    response = requests.get(
        glance.url + '/versions', timeout=TIMEOUT,
        headers={'X-Forwarded-Proto': 'https',
                 'X-Forwarded-Host': 'images.example.com'})
    assert response.status_code == 200
    hrefs = {link['href'] for version in response.json()['versions']
             for link in version['links']}
    # oslo.middleware honours the headers only if told to
    # ([oslo_middleware] enable_proxy_headers_parsing); by default the
    # links keep naming the address the request came in on.
    assert hrefs == {glance.url + '/v2/'}


def test_healthcheck(glance):
    response = requests.get(glance.url + '/healthcheck', timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.text == 'OK'


def test_unknown_path_is_404(glance):
    response = requests.get(glance.url + '/v2/no-such-resource/at-all',
                            timeout=TIMEOUT)
    assert response.status_code == 404


# The request id is set by the context filter, so on every response of
# the v2 app; the version document is answered before it, as upstream's.
V2_PATH = '/v2/no-such-resource/at-all'


def test_request_id_is_generated(glance):
    response = requests.get(glance.url + V2_PATH, timeout=TIMEOUT)
    request_id = response.headers['x-openstack-request-id']
    assert request_id.startswith('req-')
    uuid.UUID(request_id[len('req-'):])
    again = requests.get(glance.url + V2_PATH, timeout=TIMEOUT)
    assert again.headers['x-openstack-request-id'] != request_id


@pytest.mark.parametrize('given, echoed', [
    ('my-request-1', 'req-my-request-1'),
    ('req-my-request-2', 'req-my-request-2'),
])
def test_request_id_is_echoed(glance, given, echoed):
    response = requests.get(glance.url + V2_PATH, timeout=TIMEOUT,
                            headers={'X-Openstack-Request-ID': given})
    assert response.headers['x-openstack-request-id'] == echoed


def test_too_long_request_id_is_431(glance):
    response = requests.get(glance.url + V2_PATH, timeout=TIMEOUT,
                            headers={'X-Openstack-Request-ID': 'x' * 65})
    assert response.status_code == 431
    response = requests.get(glance.url + V2_PATH, timeout=TIMEOUT,
                            headers={'X-Openstack-Request-ID': 'x' * 64})
    assert response.status_code == 404
    assert response.headers['x-openstack-request-id'] == 'req-' + 'x' * 64


def _cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        return f.read().replace(b'\0', b' ').decode()


def test_workers_are_forked_processes(glance):
    """``workers = 2`` (the fixture's setting): a master and two workers.
    """
    deadline = time.monotonic() + TIMEOUT
    while len(glance.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = glance.worker_pids()
    assert len(workers) == 2, workers
    for pid in workers:
        assert 'glance.cmd.api' in _cmdline(pid)
    # Both answer: many short connections land on either.
    for _ in range(10):
        assert requests.get(glance.url + '/healthcheck',
                            timeout=TIMEOUT).status_code == 200


def _read_response(sock):
    """A whole HTTP/1.1 response (with Connection: close) as bytes."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b''.join(chunks)
        chunks.append(data)


def test_sigterm_lets_a_request_in_flight_finish(start_glance):
    server = start_glance()
    workers = server.worker_pids()
    sock = socket.create_connection(('127.0.0.1', server.port),
                                    timeout=TIMEOUT)
    with sock:
        # The server can't answer until it has read the whole request:
        # send it slowly, with SIGTERM in the middle.
        sock.sendall(b'GET /versions HTTP/1.1\r\n'
                     b'Host: 127.0.0.1\r\n')
        time.sleep(1)
        server.process.send_signal(signal.SIGTERM)
        for header in (b'Accept: application/json\r\n',
                       b'X-Slow-Client: 1\r\n',
                       b'Connection: close\r\n'):
            time.sleep(0.5)
            assert server.process.poll() is None, server.log()
            sock.sendall(header)
        sock.sendall(b'\r\n')
        response = _read_response(sock)
    head, _, body = response.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 '), response
    versions = json.loads(body)['versions']
    assert {v['id'] for v in versions} == DEFAULT_VERSIONS
    # Then the server goes away cleanly, workers included.
    assert server.process.wait(TIMEOUT) == 0, server.log()
    assert 'Traceback' not in server.log()
    for pid in workers:
        with pytest.raises(FileNotFoundError):
            _cmdline(pid)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + '/versions', timeout=TIMEOUT)


def test_sigterm_when_idle_exits_0(start_glance):
    server = start_glance()
    started = time.monotonic()
    assert server.stop() == 0, server.log()
    assert time.monotonic() - started < 15
    assert 'Traceback' not in server.log()


@pytest.mark.parametrize('kind', SERVER_DB_KINDS)
def test_serves_on_database_server(start_glance, new_database_url, kind):
    server = start_glance(database_url=new_database_url(kind))
    response = requests.get(server.url + '/versions', timeout=TIMEOUT)
    assert response.status_code == 200
    check_versions_document(response, server.url)
    response = requests.get(server.url + '/healthcheck', timeout=TIMEOUT)
    assert response.status_code == 200
    assert server.stop() == 0, server.log()


# -- bad input: one line on stderr, exit status 1, no traceback -----------

@pytest.fixture(scope='module')
def synced_sqlite(tmp_path_factory):
    """A synced SQLite database for servers that fail for other reasons."""
    base = tmp_path_factory.mktemp('synced')
    url = 'sqlite:///%s' % (base / 'glance.sqlite')
    conf = write_conf(base / 'manage.conf', {'database': {'connection': url}})
    result = run_command('manage', conf, 'db', 'sync')
    assert result.returncode == 0, result.stderr
    return url


@pytest.fixture
def api_conf(tmp_path, synced_sqlite):
    """Factory: a glance-api config, ``{section: {key: value}}`` laid over
    working defaults; returns its path."""

    def make(options=None):
        sections = {
            'DEFAULT': {'bind_host': '127.0.0.1', 'bind_port': free_port(),
                        'workers': 1},
            'database': {'connection': synced_sqlite, 'max_retries': 1,
                         'retry_interval': 0},
            'glance_store': {'filesystem_store_datadir': tmp_path / 'img'},
            'paste_deploy': {'config_file': PASTE_INI},
        }
        for section, values in (options or {}).items():
            sections.setdefault(section, {}).update(values)
        return write_conf(tmp_path / 'glance-api.conf', sections)

    return make


def run_api(conf_file):
    return run_command('api', conf_file, timeout=120)


def test_missing_config_file(tmp_path):
    missing = str(tmp_path / 'no-such-glance-api.conf')
    assert_one_line_error(run_api(missing), missing)


def test_unreachable_database(api_conf):
    with socket.socket() as closed:
        # A port nothing listens on: bound, never listening.
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]
        url = 'mysql+pymysql://glance:glance@127.0.0.1:%d/glance' % port
        conf = api_conf({'database': {'connection': url}})
        started = time.monotonic()
        result = run_api(conf)
    assert_one_line_error(result, 'database')
    assert time.monotonic() - started < 60


def test_unreachable_sqlite_file(api_conf, tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'no-such-dir' / 'glance.sqlite')
    assert_one_line_error(run_api(api_conf({'database': {'connection': url}})),
                          'database')


@pytest.mark.parametrize('url', ['not a url', 'nosuchdriver://x/y',
                                 'mysql+nosuchdbapi://u:p@127.0.0.1/db'])
def test_malformed_connection_url(api_conf, url):
    result = run_api(api_conf({'database': {'connection': url}}))
    assert_one_line_error(result, 'connection')


def test_connection_not_set(api_conf):
    result = run_api(api_conf({'database': {'connection': ''}}))
    assert_one_line_error(result, 'connection')


def test_port_in_use(api_conf):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_api(api_conf({'DEFAULT': {'bind_port': port}}))
    assert_one_line_error(result, str(port))


def test_unknown_paste_flavor(api_conf):
    result = run_api(api_conf({'paste_deploy': {'flavor': 'nosuchflavor'}}))
    assert_one_line_error(result, 'nosuchflavor')


def test_missing_paste_file(api_conf, tmp_path):
    missing = str(tmp_path / 'no-such-paste.ini')
    result = run_api(api_conf({'paste_deploy': {'config_file': missing}}))
    assert_one_line_error(result, 'paste')


def test_bad_option_value(api_conf):
    result = run_api(api_conf({'DEFAULT': {'workers': 'many'}}))
    assert_one_line_error(result, 'workers')
