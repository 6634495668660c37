"""The upload's read-ahead: whatever sizes a store driver asks for, it
hands out the body's bytes intact and in order, while its own thread reads
the body (and the format inspectors behind it) a whole block at a time;
errors reach the driver, and closing it early stops the reading."""

import io
import os

import pytest

from glance import location

BLOCK = location._ReadAhead.BLOCK_BYTES


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
    reader = location._ReadAhead(body)
    chunks = drain(reader, driver_chunk)
    reader.close()
    assert b''.join(chunks) == data
    if driver_chunk:
        assert all(len(c) <= driver_chunk for c in chunks)
    # One body read per block, plus the one that finds the end.
    assert len(body.asked) == -(-total // BLOCK) + 1


def test_a_driver_asking_for_more_than_a_block_gets_it_whole():
    data = os.urandom(8 * BLOCK)
    chunks = drain(location._ReadAhead(CountingBody(data)), 4 * BLOCK)
    assert [len(c) for c in chunks] == [4 * BLOCK, 4 * BLOCK]


class BrokenBody(CountingBody):
    """A body whose client goes away after ``good`` bytes."""

    def __init__(self, data, good):
        super().__init__(data)
        self.good = good

    def read(self, size=-1):
        if self.tell() >= self.good:
            raise ConnectionResetError('client went away')
        return super().read(size)


def test_a_broken_body_fails_the_driver_read_every_time():
    reader = location._ReadAhead(BrokenBody(os.urandom(3 * BLOCK), BLOCK))
    assert len(reader.read(BLOCK)) == BLOCK
    for _ in range(2):  # never mistaken for the end of the data
        with pytest.raises(ConnectionResetError):
            reader.read(BLOCK)
    reader.close()


def test_closing_early_stops_reading_the_body():
    body = CountingBody(os.urandom(64 * BLOCK))
    reader = location._ReadAhead(body)
    assert len(reader.read(64 * 1024)) == 64 * 1024
    reader.close()
    assert not reader._thread.is_alive()
    # A few blocks ahead at most, not the rest of the body.
    assert len(body.asked) <= 2 + reader.AHEAD_BYTES // BLOCK
