"""The merge streams: each shard file is read once, the merged file and the reports are written as
results arrive, and memory stays flat whatever the number of results and failures."""

import builtins
import dataclasses
import json
import logging
import os
import tracemalloc

import pytest

from helpers import gather_spec as spec, mini_batch_result as result, write_shards
from snakebatch.errors import ErrorThresholdExceeded, ManifestError
from snakebatch.gather.job import gather


def _failing(index, traceback_size):
    """A mini-batch result with 3 lines and one failed item whose traceback is ``traceback_size`` chars."""
    base = result(index, [f"{index}-a", f"{index}-b", f"{index}-c"], failed_items=[f"{index}.png"])
    [failure] = base.failures
    return dataclasses.replace(base, failures=(dataclasses.replace(failure, traceback="x" * traceback_size),))


def _peak_bytes(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gather_of_many_failures_keeps_memory_flat(tmp_path):
    """1,200 mini-batches each with a 10 KB traceback (12 MB of tracebacks): the merge holds no
    result and no traceback past its line, so the peak stays far below what the reports hold
    (holding them took 3 times their size)."""
    count, size = 1200, 10_000
    shards = write_shards(tmp_path, [[_failing(i, size) for i in range(s * 400, (s + 1) * 400)] for s in range(3)])
    run_dir = tmp_path / "run"
    peak = _peak_bytes(lambda: gather(spec(), shards, str(run_dir)))
    assert (run_dir / "out.txt").read_text().count("\n") == 3 * count
    errors = (run_dir / "errors.jsonl").read_text().splitlines()
    assert len(errors) == count and json.loads(errors[-1])["item"] == f"{count - 1}.png"
    assert peak < 2_000_000, f"gather held {peak / 1e6:.1f} MB for {count * size / 1e6:.0f} MB of tracebacks"


def test_gather_of_many_mini_batches_keeps_memory_flat(tmp_path):
    """12,000 mini-batches of 3 lines: memory does not grow with the number of results (keeping
    each result without its lines took about 650 bytes a mini-batch)."""
    count = 12_000
    shards = write_shards(tmp_path, [[result(i, [f"{i}-a", f"{i}-b", f"{i}-c"]) for i in range(s * 3000, (s + 1) * 3000)]
                                     for s in range(4)])
    run_dir = tmp_path / "run"
    peak = _peak_bytes(lambda: gather(spec(), shards, str(run_dir)))
    assert os.path.getsize(run_dir / "logs" / "sys" / "job_report" / "processed_mini-batches.csv") > 500_000
    assert peak < 2_000_000, f"gather held {peak / 1e6:.1f} MB for {count} mini-batches"


@pytest.mark.parametrize("fmt,name", [("txt", "out.txt"), ("parquet", "out.parquet")])
def test_each_shard_file_is_read_once(tmp_path, monkeypatch, fmt, name):
    import pyarrow as pa

    def stored(index):
        path = tmp_path / "store" / f"{index}.arrow"
        path.parent.mkdir(exist_ok=True)
        table = pa.table({"id": [index]})
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return dataclasses.replace(result(index, ["x"]), table_file=str(path),
                                   lines=() if fmt == "parquet" else ("x",))

    shards = write_shards(tmp_path, [[stored(0), stored(1)], [stored(2)]])
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) in shards:
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    gather(spec(append_row_format=fmt, append_row_file_name=name), shards, str(tmp_path / "run"))
    assert sorted(opened) == sorted(shards)


def test_a_threshold_failure_still_names_the_first_failures_and_counts_the_rest(tmp_path):
    shards = write_shards(tmp_path, [[_failing(i, 50) for i in range(5)]])
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(error_threshold=0), shards, str(tmp_path / "run"))
    message = str(info.value)
    assert "  0.png: ValueError: bad 0.png (after 3 tries)" in message
    assert "  2.png: ValueError: bad 2.png (after 3 tries)" in message and "3.png" not in message
    assert "  ... and 2 more; every failure is in errors.jsonl" in message


def test_a_summary_that_cannot_be_marked_stale_is_logged_once(tmp_path, caplog):
    from snakebatch.gather.lifecycle import clear_verdict

    (tmp_path / "summary.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        clear_verdict(str(tmp_path), None)
    [record] = [r for r in caplog.records if "summary.json" in r.getMessage()]
    assert "cannot be marked stale" in record.getMessage()


def test_a_failed_summary_that_cannot_be_written_is_logged_and_the_cause_raised(tmp_path, caplog):
    shards = write_shards(tmp_path, [[result(0, ["a"])]])
    with open(shards[0], "a") as handle:
        handle.write("{not json\n")
    run_dir = tmp_path / "run"
    (run_dir / "summary.json").mkdir(parents=True)     # the failed summary cannot be written
    with caplog.at_level(logging.WARNING), pytest.raises(ManifestError, match="line 2 is corrupt"):
        gather(spec(), shards, str(run_dir))
    assert any("the reports of the failed gather" in r.getMessage() for r in caplog.records)
