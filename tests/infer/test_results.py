"""The records a shard job writes to its shard result file: the trailer of a shard that stopped early."""

import pytest

from snakebatch.infer.results import TRAILER_PREFIX, ShardTrailer


def test_a_threshold_trailer_is_the_line_gather_and_earlier_versions_read():
    trailer = ShardTrailer("3 failed item(s) > error_threshold 1", 12)
    assert trailer.to_json() == '{"stopped_early": "3 failed item(s) > error_threshold 1", "total_mini_batches": 12}'
    assert trailer.to_json().startswith(TRAILER_PREFIX)
    assert ShardTrailer.from_json(trailer.to_json()) == trailer


def test_a_start_failure_trailer_names_the_shard_and_its_error_in_full():
    trailer = ShardTrailer("the entry script failed to start: ValueError: no model", 4,
                           "ValueError: no model\nTraceback ...", 2, 3)
    assert trailer.to_json() == ('{"stopped_early": "the entry script failed to start: ValueError: no model", '
                                 '"total_mini_batches": 4, "failure": "ValueError: no model\\nTraceback ...", '
                                 '"shard": 2, "shard_count": 3}')
    assert ShardTrailer.from_json(trailer.to_json()) == trailer


def test_a_line_that_is_no_trailer_is_refused():
    with pytest.raises(KeyError):
        ShardTrailer.from_json('{"index": 0}')
