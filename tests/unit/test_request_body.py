"""The upload body handed to the store layer: a Content-Length body is read
from the server's input as it comes, never past its length, and a body that
ends early is an error rather than a short image."""

import os

import pytest
import webob

from glance.api import common
# CountingBody stands in for wsgi.input: what the socket holds, perhaps
# followed by the next request of a keep-alive connection.
from tests.unit.test_upload_reader import CountingBody, drain


def request(body, content_length=None, chunked=False):
    req = webob.Request.blank('/v2/images/x/file', method='PUT')
    req.environ['wsgi.input'] = CountingBody(body)
    req.content_length = content_length
    if chunked:
        req.headers['Transfer-Encoding'] = 'chunked'
        req.environ['wsgi.input_terminated'] = True  # as gunicorn says
    req.is_body_seekable = False
    return req


@pytest.mark.parametrize('size', [1, 64 * 1024, 1024 * 1024, -1])
def test_content_length_body_stops_at_its_length(size):
    data = os.urandom(300_000)
    req = request(data + b'GET /next HTTP/1.1\r\n\r\n', len(data))
    stream = common.body_stream(req)
    assert b''.join(drain(stream, size)) == data
    # The next request's bytes were never asked for.
    assert req.environ['wsgi.input'].read() == b'GET /next HTTP/1.1\r\n\r\n'


def test_content_length_body_is_read_in_the_sizes_asked():
    """No buffering layer splits or copies the reads in between."""
    data = os.urandom(3 * 1024 * 1024)
    req = request(data, len(data))
    drain(common.body_stream(req), 1024 * 1024)
    assert req.environ['wsgi.input'].asked == [1024 * 1024] * 3


def test_body_shorter_than_its_content_length_is_an_error():
    req = request(b'only this', 100)
    stream = common.body_stream(req)
    assert stream.read(1000) == b'only this'
    with pytest.raises(IOError, match='91 bytes less than its Content-Length'):
        stream.read(1000)


def test_chunked_body_is_read_to_its_end():
    req = request(b'whatever the server decoded', chunked=True)
    assert b''.join(drain(common.body_stream(req), 8)) == (
        b'whatever the server decoded')
