"""glance.wsgi.api:application served by uWSGI, as devstack deploys it."""

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import require
from tests.functional.conftest import PASTE_INI
from tests.helpers import free_port
from tests.helpers import run_command
from tests.helpers import write_conf


def _uwsgi_binary():
    beside_python = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
    return beside_python if os.path.exists(beside_python) else (
        shutil.which('uwsgi'))


@pytest.fixture(scope='module')
def uwsgi_glance(tmp_path_factory):
    binary = _uwsgi_binary()
    require(binary, 'uwsgi is not installed (pip install uwsgi)')
    base = tmp_path_factory.mktemp('uwsgi')
    conf_dir = base / 'etc'
    conf_dir.mkdir()
    conf_file = str(conf_dir / 'glance-api.conf')
    write_conf(conf_file, {
        'database': {'connection': 'sqlite:///%s' % (base / 'g.sqlite')},
        'glance_store': {'filesystem_store_datadir': str(base / 'images')},
        'paste_deploy': {'config_file': PASTE_INI}})
    assert run_command('manage', conf_file, 'db', 'sync').returncode == 0
    port = free_port()
    log = open(base / 'uwsgi.log', 'wb')
    process = subprocess.Popen(
        [binary, '--http-socket', '127.0.0.1:%d' % port,
         '--virtualenv', sys.prefix, '--module',
         'glance.wsgi.api:application', '--processes', '2',
         '--enable-threads', '--http-chunked-input',
         '--chunked-input-limit', str(4 * 1024 * 1024), '--chdir', str(base),
         '--die-on-term'],
        env=dict(os.environ, OS_GLANCE_CONFIG_DIR=str(conf_dir)),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = 'http://127.0.0.1:%d' % port
    for _ in range(300):
        try:
            requests.get(url + '/versions', timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield url
    # The whole group: uWSGI's workers can outlive a master told to stop.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_versions_and_images_answer_under_uwsgi(uwsgi_glance):
    assert requests.get(uwsgi_glance + '/versions').status_code == 200
    assert requests.get(uwsgi_glance + '/v2/images').status_code == 200


@pytest.mark.parametrize('chunked', [True, False],
                         ids=['chunked', 'content-length'])
def test_upload_keeps_every_byte_under_uwsgi(uwsgi_glance, chunked):
    """python-glanceclient streams uploads chunked, which uWSGI hides from
    plain WSGI readers; openstacksdk sends Content-Length, read from
    uWSGI's input directly. Either way the image must get every byte."""
    image = requests.post(uwsgi_glance + '/v2/images', json={
        'name': 'upload', 'disk_format': 'raw',
        'container_format': 'bare'}).json()
    data = os.urandom(3 * 1024 * 1024 + 17)
    body = ((data[i:i + 65536] for i in range(0, len(data), 65536))
            if chunked else data)
    answer = requests.put(
        uwsgi_glance + '/v2/images/%s/file' % image['id'], data=body,
        headers={'Content-Type': 'application/octet-stream'})
    assert answer.status_code == 204
    shown = requests.get(uwsgi_glance + '/v2/images/' + image['id']).json()
    assert shown['status'] == 'active'
    assert shown['size'] == len(data)
    assert shown['checksum'] == hashlib.md5(data).hexdigest()
    downloaded = requests.get(
        uwsgi_glance + '/v2/images/%s/file' % image['id']).content
    assert downloaded == data
