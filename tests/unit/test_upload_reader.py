"""The upload's block reader: whatever sizes a store driver asks for, it
hands out the body's bytes intact and in order, while the body (and the
format inspectors behind it) is read a whole block at a time."""

import io
import os

import pytest

from glance import location

BLOCK = location._BlockReader.BLOCK_BYTES


class CountingBody(io.BytesIO):
    """A request body that remembers the sizes it was asked for."""

    def __init__(self, data):
        super().__init__(data)
        self.asked = []

    def read(self, size=-1):
        self.asked.append(size)
        return super().read(size)


def drain(reader, size):
    chunks = []
    while chunk := reader.read(size):
        chunks.append(chunk)
    return chunks


@pytest.mark.parametrize('total', [0, 1, BLOCK - 1, BLOCK, 3 * BLOCK + 12345])
@pytest.mark.parametrize('driver_chunk', [64 * 1024, 1000, BLOCK, None])
def test_bytes_come_out_intact_and_in_driver_sized_pieces(total,
                                                          driver_chunk):
    data = os.urandom(total)
    body = CountingBody(data)
    chunks = drain(location._BlockReader(body), driver_chunk)
    assert b''.join(chunks) == data
    if driver_chunk:
        assert all(len(c) <= driver_chunk for c in chunks)
    # One body read per block, plus the one that finds the end.
    assert len(body.asked) == -(-total // BLOCK) + 1


def test_a_driver_asking_for_more_than_a_block_gets_it_whole():
    data = os.urandom(8 * BLOCK)
    chunks = drain(location._BlockReader(CountingBody(data)), 4 * BLOCK)
    assert [len(c) for c in chunks] == [4 * BLOCK, 4 * BLOCK]
