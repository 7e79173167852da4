"""Transient store errors are retried with backoff; the rest fail at once. Items that could not be
read are cut out of the positions run() gets."""

import pytest

from snakebatch.storage.locations import is_transient, with_retries
from snakebatch.infer.attempts import segments


class Status(Exception):
    def __init__(self, status_code):
        super().__init__(f"status {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize("exc, transient", [
    (ConnectionResetError("Connection reset by peer"), True),
    (TimeoutError("timed out"), True),
    (Status(503), True),
    (Status(429), True),
    (Status(404), False),
    (Status(403), False),
    (OSError("An error occurred (SlowDown) when calling the GetObject operation"), True),
    (FileNotFoundError("gone"), False),
    (ValueError("bad"), False),
])
def test_which_errors_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_a_transient_error_is_retried_after_each_delay_then_raised():
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "done"

    assert with_retries(flaky, delays=(0.1, 0.2, 0.4), sleep=waits.append) == "done"
    assert waits == [0.1, 0.2]
    waits.clear()
    with pytest.raises(ConnectionResetError):
        with_retries(lambda: (_ for _ in ()).throw(ConnectionResetError("reset")), delays=(0.1, 0.2),
                     sleep=waits.append)
    assert waits == [0.1, 0.2]


def test_a_permanent_error_is_not_retried():
    waits = []
    with pytest.raises(FileNotFoundError):
        with_retries(lambda: (_ for _ in ()).throw(FileNotFoundError("gone")), sleep=waits.append)
    assert waits == []


def test_segments_skip_the_unread_positions():
    assert segments(6, {2}) == [(0, 1), (3, 4, 5)]
    assert segments(3, set()) == [(0, 1, 2)]
    assert segments(3, {0, 1, 2}) == []
    assert segments(4, {0, 3}) == [(1, 2)]
