"""Store-layer pieces that need no store: ranges cut from a stream that
can only be read from the start, and the fsid of an RBD store."""

import types

import pytest

from glance import stores


class Stream:
    """Chunks as a store yields them; notes whether it was closed."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.closed = False

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.closed = True


DATA = bytes(range(256)) * 4
CHUNKS = [DATA[i:i + 100] for i in range(0, len(DATA), 100)]


@pytest.mark.parametrize('offset, length', [
    (0, 1), (0, 100), (0, len(DATA)), (99, 2), (100, 100), (150, 500),
    (len(DATA) - 1, 1), (350, len(DATA) - 350)])
def test_byte_range_yields_exactly_the_range(offset, length):
    stream = Stream(CHUNKS)
    got = b''.join(stores._byte_range(stream, offset, length))
    assert got == DATA[offset:offset + length]
    assert stream.closed


def test_byte_range_stops_reading_once_the_range_is_out():
    read = []

    def chunks():
        for chunk in CHUNKS:
            read.append(chunk)
            yield chunk

    assert b''.join(stores._byte_range(chunks(), 10, 150)) == DATA[10:160]
    assert len(read) == 2


@pytest.mark.parametrize('prefix, fsid', [
    ('rbd://8a1f-22/images/', '8a1f-22'),
    ('rbd://a%2Fb/images/', 'a/b'),
    ('rbd://', None),
])
def test_rbd_fsid_comes_from_the_url_prefix(prefix, fsid):
    driver = types.SimpleNamespace(url_prefix=prefix)
    assert stores._rbd_fsid(driver) == fsid
