"""Gather: the merge in input order, the reports and the verdict of a run."""

import dataclasses
import json
import os

import pytest

from helpers import gather_spec as spec, mini_batch_result as result, write_shards
from snakebatch.errors import ErrorThresholdExceeded, ManifestError
from snakebatch.gather.job import gather


def test_merge_follows_input_order_across_shards(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a", "b"]), result(1, ["c", "d"])], [result(2, ["e"])], []])
    run_dir = tmp_path / "run"
    summary = gather(spec(), shards, str(run_dir))
    assert (run_dir / "out.txt").read_text() == "a\nb\nc\nd\ne\n"
    assert (run_dir / "_SUCCESS").read_text() == "out.txt\n"
    assert (run_dir / "errors.jsonl").read_text() == ""
    assert {k: summary[k] for k in ("status", "items", "succeeded", "failed", "mini_batches", "output")} == {
        "status": "succeeded", "items": 5, "succeeded": 5, "failed": 0, "mini_batches": 3, "output": str(run_dir / "out.txt")}
    assert summary["compute_s"] == 1.5
    assert summary["wall_s"] == 2.5
    assert summary["items_per_s"] == 2.0
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    csv_rows = (run_dir / "logs" / "sys" / "job_report" / "processed_mini-batches.csv").read_text().splitlines()
    assert csv_rows[0] == ("mini_batch,first_item,items,succeeded,failed,tries,duration_s,cpu_s,agent_name,reused,"
                           "started_at")
    assert csv_rows[1] == "0,0,2,2,0,1,0.500,0.250,shard-00000,False,1000.000"
    assert (run_dir / "logs" / "job_result.txt").read_text() == (
        "status: succeeded\nitems: 5 (succeeded 5, failed 0)\nmini-batches: 3 (failed 0, reused 0)\n")


def test_tolerated_failures_are_reported_and_not_merged(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png"]), result(1, ["c", "d"])]])
    summary = gather(spec(error_threshold=1), shards, str(tmp_path / "run"))
    assert (tmp_path / "run" / "out.txt").read_text() == "a\nc\nd\n"
    assert (summary["failed"], summary["failed_mini_batches"]) == (1, 1)
    [error] = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
    assert list(error)[:4] == ["item", "mini_batch", "shard", "worker"]
    assert error == {"item": "x.png", "mini_batch": 0, "shard": 1, "worker": "shard-00000", "tries": 3,
                     "exception": "ValueError",
                     "message": "bad x.png", "error": "ValueError: bad x.png",
                     "traceback": "Traceback...\nValueError: bad x.png"}


@pytest.mark.parametrize("overrides,breach", [
    ({"error_threshold": 1}, "2 failed item(s) > error_threshold 1"),
    ({"allowed_failed_count": 0}, "1 failed mini-batch(es) > allowed_failed_count 0"),
    ({"allowed_failed_percent": 10}, "50.00% failed mini-batches > allowed_failed_percent 10%"),
])
def test_exceeded_threshold_fails_with_the_root_cause_and_no_merged_file(tmp_path, overrides, breach):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "out.txt").write_text("stale\n")
    (run_dir / "_SUCCESS").write_text("")
    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png", "y.png"]), result(1, ["c"])]])
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(**overrides), shards, str(run_dir))
    message = str(info.value)
    assert message.startswith(f"The run failed: {breach}.\nFirst failures:\n  x.png: ValueError: bad x.png (after 3 tries)")
    assert "  y.png: ValueError: bad y.png (after 3 tries)" in message
    assert not (run_dir / "out.txt").exists()
    assert not (run_dir / "_SUCCESS").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["threshold_breaches"] == [breach]
    assert len((run_dir / "errors.jsonl").read_text().splitlines()) == 2
    assert f"The run failed: {breach}." in (run_dir / "logs" / "job_result.txt").read_text()
    assert message.endswith(f"Error report: {run_dir}/errors.jsonl; worker error logs: {run_dir}/logs/user/error/\n"
                            "The next run retries the failed mini-batches (1 shard(s) rerun; finished mini-batches are reused).")


def test_summary_only_writes_no_merged_file(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"])]])
    summary = gather(spec(output_action="summary_only"), shards, str(tmp_path / "run"))
    assert summary["output"] is None
    assert sorted(os.listdir(tmp_path / "run")) == ["_SUCCESS", "errors.jsonl", "logs", "summary.json"]


def test_missing_or_duplicated_mini_batch_is_detected(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"])], [result(0, ["a"])]])
    with pytest.raises(ManifestError, match="shard results hold mini-batch 0 where mini-batch 1 was expected"):
        gather(spec(), shards, str(tmp_path / "run"))
    with pytest.raises(ManifestError, match="does not exist"):
        gather(spec(), [str(tmp_path / "nope.jsonl")], str(tmp_path / "run"))


def test_corrupt_shard_result_names_file_and_line(tmp_path):
    [path] = write_shards(tmp_path, [[result(0, ["a"])]])
    with open(path, "a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ManifestError, match=r"shard result .*shard-00000.jsonl' line 2 is corrupt"):
        gather(spec(), [path], str(tmp_path / "run"))


def test_exceeded_threshold_removes_the_shards_with_failures_for_a_retry(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"])], [result(1, ["b"], failed_items=["x.png"])]])
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(error_threshold=0), shards, str(tmp_path / "run"))
    assert os.path.exists(shards[0]) and not os.path.exists(shards[1])
    assert str(info.value).endswith("The next run retries the failed mini-batches (1 shard(s) rerun; "
                                    "finished mini-batches are reused).")


def test_shards_that_stopped_early_make_the_run_fail_with_full_reports(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png", "y.png"])], [result(2, ["c"])]])
    with open(shards[0], "a") as handle:
        handle.write(json.dumps({"stopped_early": "stopped early: 2 failed item(s) > error_threshold 1 in this run "
                                                  "so far (all shards).", "total_mini_batches": 10}) + "\n")
    with pytest.raises(ErrorThresholdExceeded) as info:
        gather(spec(error_threshold=1, allowed_failed_percent=5), shards, str(tmp_path / "run"))
    assert str(info.value).startswith(
        "The run failed: 2 failed item(s) > error_threshold 1; 10.00% failed mini-batches > allowed_failed_percent 5%. "
        "1 shard(s) stopped early; 2 mini-batch(es) ran.\nFirst failures:\n  x.png: ValueError: bad x.png")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stopped_early"], summary["failed"]) == ("failed", True, 2)
    assert len((tmp_path / "run" / "errors.jsonl").read_text().splitlines()) == 2
    assert not os.path.exists(shards[0]) and os.path.exists(shards[1])


def test_a_corrupt_shard_result_leaves_a_failed_summary_and_says_how_to_recover(tmp_path):
    run_dir = tmp_path / "run"
    good = write_shards(tmp_path, [[result(0, ["a"])], [result(1, ["b"])]])
    gather(spec(), good, str(run_dir))
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "succeeded"
    with open(good[1], "w") as handle:
        handle.write('{"index": 1, "lines": ["b"\n')
    with pytest.raises(ManifestError) as info:
        gather(spec(), good, str(run_dir))
    assert "line 1 is corrupt" in str(info.value)
    assert "delete it (or run snakemake with --forcerun infer_shard) so the shard runs again" in str(info.value)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["output"]) == ("failed", None)
    assert (run_dir / "logs" / "job_result.txt").read_text().startswith("status: failed\nThe run failed: shard result")
    assert not (run_dir / "out.txt").exists() and not (run_dir / "_SUCCESS").exists()
    assert [n for n in os.listdir(run_dir) if n.startswith(".tmp")] == []


def test_a_dataframe_header_cannot_follow_list_results(tmp_path):
    from snakebatch.errors import ResultSchemaError

    shards = write_shards(tmp_path, [[result(0, ["plain"]),
                                      dataclasses.replace(result(1, ["1 2"]), header="a b")]])
    with pytest.raises(ResultSchemaError, match=r"mini-batch 1 returned a DataFrame but mini-batch 0 returned a list"):
        gather(spec(append_row_dataframe_header=True), shards, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "out.txt").exists()
    ok = write_shards(tmp_path, [[dataclasses.replace(result(0, []), header="a b"),
                                  dataclasses.replace(result(1, ["1 2"]), header="a b")]])
    gather(spec(append_row_dataframe_header=True), ok, str(tmp_path / "run"))
    assert (tmp_path / "run" / "out.txt").read_text() == "a b\n1 2\n"


def test_a_failed_gathers_reports_are_kept_and_put_back_after_snakemake_removes_them(tmp_path):
    """Snakemake removes a failed job's outputs (summary.json, errors.jsonl and
    processed_mini-batches.csv are gather's); the workflow's onerror hook restores them."""
    from snakebatch.gather.job import restore_reports
    from snakebatch.storage.layout import RunLayout

    shards = write_shards(tmp_path, [[result(0, ["a"], failed_items=["x.png"]), result(1, ["c", "d"])]])
    run_dir = str(tmp_path / "run")
    with pytest.raises(ErrorThresholdExceeded):
        gather(spec(error_threshold=0), shards, run_dir)
    layout = RunLayout(run_dir)
    written = {path: open(path).read() for path in (layout.summary, layout.errors, layout.processed_mini_batches)}
    for path in written:
        os.unlink(path)                      # what Snakemake does to a failed job's outputs
    assert restore_reports(layout) == [layout.summary, layout.errors, layout.processed_mini_batches]
    assert {path: open(path).read() for path in written} == written
    assert json.loads(written[layout.summary])["status"] == "failed"
    assert restore_reports(layout) == []     # nothing kept any more
    assert not os.path.exists(layout.kept_report("summary.json"))


def test_shards_whose_entry_script_did_not_start_are_named_in_the_summary_with_the_reports_of_the_rest(tmp_path):
    from snakebatch.errors import EntryScriptError
    from snakebatch.storage.layout import RunLayout

    shards = write_shards(tmp_path, [[], [result(0, ["a", "b"]), result(1, ["c"], failed_items=["x.png"])]])
    failure = ("init() of entry_script '/s.py' failed 3 times in a row: NameError: name 'lod' is not defined\n"
               "Traceback (most recent call last):\n  File \"/s.py\", line 2, in init\nNameError: name 'lod' is not "
               "defined\nWorker error log: /run/logs/user/error/shard-00000.txt")
    with open(shards[0], "w") as handle:
        handle.write(json.dumps({"stopped_early": "the entry script failed to start", "total_mini_batches": 2,
                                 "failure": failure, "shard": 0, "shard_count": 2}) + "\n")
    run_dir = str(tmp_path / "run")
    with pytest.raises(EntryScriptError):
        gather(spec(), shards, run_dir)
    layout = RunLayout(run_dir)
    summary = json.load(open(layout.summary))
    assert (summary["status"], summary["output"]) == ("failed", None)
    assert summary["start_failures"] == [
        {"shard": 0, "error": "init() of entry_script '/s.py' failed 3 times in a row: NameError: name 'lod' is not "
                              "defined"}]
    assert summary["error"].startswith("the entry script failed to start in 1 of 2 shard(s).\n")
    assert [json.loads(line)["item"] for line in open(layout.errors)] == ["x.png"]
    assert [line.split(",")[0] for line in open(layout.processed_mini_batches)] == ["mini_batch", "0", "1"]
    assert os.path.exists(layout.kept_report("errors.jsonl"))   # put back after Snakemake removes it


def test_the_summary_counts_reused_and_computed_items_apart(tmp_path):
    shards = write_shards(tmp_path, [[result(0, ["a", "b"], reused=True), result(1, ["c", "d"])]])
    summary = gather(spec(), shards, str(tmp_path / "run"))
    assert {k: summary[k] for k in ("items", "computed_items", "reused_items", "wall_s", "items_per_s")} == {
        "items": 4, "computed_items": 2, "reused_items": 2, "wall_s": 0.5, "items_per_s": 4.0}


def test_merged_parquet_holds_the_stored_tables_in_input_order_one_row_group_each(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def stored(index, table, suffix):
        path = tmp_path / "store" / f"{index}{suffix}"
        path.parent.mkdir(exist_ok=True)
        if suffix == ".parquet":  # a store written before table files were Arrow IPC
            pq.write_table(table, path)
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        return dataclasses.replace(result(index, [""] * table.num_rows), lines=(), table_file=str(path))

    shards = write_shards(tmp_path, [[stored(0, pa.table({"id": [0, 1], "v": [None, None]}), ".arrow"),
                                      stored(1, pa.table({"id": [2], "v": [2.5]}), ".parquet")],
                                     [stored(2, pa.table({"id": [3, 4], "v": [3.0, 4.5]}), ".arrow")]])
    summary = gather(spec(append_row_format="parquet", append_row_file_name="out.parquet"), shards,
                     str(tmp_path / "run"))
    merged = pq.ParquetFile(tmp_path / "run" / "out.parquet")
    assert merged.read().to_pydict() == {"id": [0, 1, 2, 3, 4], "v": [None, None, 2.5, 3.0, 4.5]}
    assert str(merged.schema_arrow) == "id: int64\nv: double"
    assert [merged.metadata.row_group(i).num_rows for i in range(merged.num_row_groups)] == [2, 1, 2]
    assert (summary["items"], summary["succeeded"]) == (5, 5)


def test_an_unreadable_stored_table_names_its_mini_batch_and_file(tmp_path):
    broken = tmp_path / "store" / "0.arrow"
    broken.parent.mkdir()
    broken.write_bytes(b"not arrow")
    shards = write_shards(tmp_path, [[dataclasses.replace(result(0, ["x"]), lines=(), table_file=str(broken))]])
    with pytest.raises(ManifestError, match=r"^the result table of mini-batch 0 \('.*/store/0\.arrow'\) cannot be "
                                            r"read: "):
        gather(spec(append_row_format="parquet", append_row_file_name="out.parquet"), shards, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "out.parquet")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_failed_upload_fails_every_verdict_naming_the_upload(tmp_path):
    """issue 21 point 5: job_result.txt, summary.json, the status and the report say failed and
    name the upload (a local output_uri below a file: it cannot be made)."""
    from snakebatch.errors import StorageError
    from snakebatch.monitor import console
    from snakebatch.monitor.report import summary_html
    from snakebatch.monitor.status import format_status, run_status
    from snakebatch.settings.plan import PlanRecord, write_plan
    from snakebatch.storage.layout import RunLayout

    (tmp_path / "pub").write_text("a file where output_uri's folder should be")
    uri = str(tmp_path / "pub" / "run")
    run_dir = tmp_path / "run"
    write_plan(str(run_dir / "plan.json"), PlanRecord("r", 1, 1, "inv"))
    shards = write_shards(tmp_path, [[result(0, ["a", "b"]), result(1, ["c"])]])
    with pytest.raises(StorageError) as caught:
        gather(spec(output_uri=uri), shards, str(run_dir))
    cause = (f"the upload to output_uri failed: {uri!r} cannot be written: Not a directory (errno 20). Run the "
             f"same command again once {uri} can be written: only gather runs again (every mini-batch is reused)")
    assert str(caught.value) == cause
    assert (run_dir / "logs" / "job_result.txt").read_text() == (
        "status: failed\nitems: 3 (succeeded 3, failed 0)\nmini-batches: 2 (failed 0, reused 0)\n"
        f"The run failed: {cause}\n")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["error"], summary["output"], summary["items"]) == ("failed", cause, None, 3)
    assert "output_uri" not in summary
    assert not (run_dir / "_SUCCESS").exists()
    kept = RunLayout(str(run_dir)).kept_report("summary.json")  # put back after Snakemake removes the outputs
    assert json.loads(open(kept).read())["error"] == cause
    status = run_status(str(run_dir))
    assert status.state == "failed"
    assert f"Cause: {cause}" in format_status(status).splitlines()
    assert "<h3>Run r: failed</h3>" in summary_html(summary) and "the upload to output_uri failed" in summary_html(summary)
    plan = dataclasses.make_dataclass("Plan", ["layout"])(RunLayout(str(run_dir)))
    assert console.failure_report(plan).startswith("status: failed\n")
    assert console.failure_report(plan).endswith(f"The run failed: {cause}")


def test_an_upload_to_a_closed_port_fails_the_run_naming_the_endpoint(tmp_path):
    from snakebatch.errors import StorageError

    port = _closed_port()
    shards = write_shards(tmp_path, [[result(0, ["a"])]])
    run_dir = tmp_path / "run"
    with pytest.raises(StorageError) as caught:
        gather(spec(output_uri="s3://results/run1", storage_options={"client_kwargs": {
            "endpoint_url": f"http://127.0.0.1:{port}"}}), shards, str(run_dir))
    assert str(caught.value).startswith(
        f"the upload to output_uri failed: 's3://results/run1' cannot be reached: its endpoint "
        f"http://127.0.0.1:{port} did not accept a connection within ")
    assert (run_dir / "logs" / "job_result.txt").read_text().startswith("status: failed\n")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
