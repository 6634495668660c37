"""glance-scrubber against a store reached over HTTP(S) client libraries.

The scrubber monkey-patches with eventlet; if that happens after ``ssl``
(and urllib3/requests) were imported, every TLS context those libraries
build recurses until RecursionError, and with it every delete through
glance_store's s3 driver (botocore builds one per client) or any https
store. The first test checks that in the process as ``glance-scrubber``
sets it up; the second scrubs through the s3 driver for real, against
../shared/upstream/fake_s3.py (it needs boto3, which is not a requirement
of the project: skipped without it).
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import SHARED_DIR, sync_database
from tests.functional.test_scrubber import Database, error_lines, output_of
from tests.helpers import REPO_ROOT, free_port, write_conf

FAKE_S3 = os.path.join(SHARED_DIR, 'upstream', 'fake_s3.py')

TLS_CHECK = '''
import glance.cmd.scrubber  # noqa: F401  (as python -m glance.cmd.scrubber)
from urllib3.util import ssl_
context = ssl_.create_urllib3_context()
context.options |= 0
print('tls ok')
'''


def test_tls_clients_work_in_the_scrubber_process():
    result = subprocess.run(
        [sys.executable, '-c', TLS_CHECK], capture_output=True, text=True,
        check=False, timeout=120, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)

    assert result.returncode == 0, result.stderr[-2000:]
    assert 'tls ok' in result.stdout


@pytest.fixture
def fake_s3(tmp_path):
    if not os.path.exists(FAKE_S3):
        pytest.skip(f'{FAKE_S3} not found (set GLANCE_SHARED_DIR)')
    port = free_port()
    with open(tmp_path / 'fake_s3.log', 'wb') as log:
        proc = subprocess.Popen(
            [sys.executable, FAKE_S3, '--port', str(port),
             '--delete-delay-ms', '0', '--bucket', 'glance'],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'

    def stats():
        with urllib.request.urlopen(url + '/_stats', timeout=5) as r:
            return json.load(r)

    deadline = time.monotonic() + 30
    while True:
        try:
            stats()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    try:
        yield port, stats
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_scrubs_through_the_s3_driver(tmp_path, fake_s3):
    pytest.importorskip('boto3')
    port, stats = fake_s3
    url = f'sqlite:///{tmp_path}/glance.sqlite'
    sync_database(url)
    db = Database(url)
    # Seed with file locations, then point them at S3 objects.
    files = db.seed(str(tmp_path / 'unused'), 5)
    keys = []
    for image_id in files:
        [loc] = db.locations(image_id)
        key = f'{image_id}-data'
        keys.append(key)
        db.execute('UPDATE image_locations SET value = :v WHERE id = :id',
                   {'v': f's3+http://127.0.0.1:{port}/glance/{key}',
                    'id': loc['id']})
        request = urllib.request.Request(
            f'http://127.0.0.1:{port}/glance/{key}', data=b'x' * 64,
            method='PUT')
        with urllib.request.urlopen(request, timeout=10):
            pass
    assert stats()['objects'] == 5
    conf = write_conf(tmp_path / 'glance-scrubber.conf', {
        'DEFAULT': {'scrub_time': 0, 'scrub_pool_size': 4},
        'database': {'connection': url},
        'glance_store': {
            'stores': 's3', 'default_store': 's3',
            's3_store_host': f'http://127.0.0.1:{port}',
            's3_store_access_key': 'test', 's3_store_secret_key': 'testtest',
            's3_store_bucket': 'glance',
            's3_store_bucket_url_format': 'path',
        },
    })

    result = subprocess.run(
        [sys.executable, '-m', 'glance.cmd.scrubber', '--config-file', conf],
        capture_output=True, text=True, check=False, timeout=300,
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL)

    output = output_of(result)
    try:
        assert result.returncode == 0, output
        assert error_lines(output) == [], output
        assert db.status_counts('image_locations') == {'deleted': 5}
        assert db.status_counts('images') == {'deleted': 5}
        counters = stats()
        assert counters['DELETE'] == 5 and counters['objects'] == 0, counters
    finally:
        db.dispose()
