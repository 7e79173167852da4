"""summary.json as RunSummary: one builder per writer, the file's bytes, reading it back."""

import json

import pytest

from helpers import gather_spec
from snakebatch.errors import ManifestError
from snakebatch.gather.summary import ABSENT, RunSummary, RunTiming, StartFailure, read_summary, write_summary
from snakebatch.gather.thresholds import Tally

TALLY = Tally(items=5, succeeded=4, failed=1, mini_batches=3, failed_mini_batches=1, reused_mini_batches=1)
TIMING = RunTiming(computed_items=3, reused_items=2, compute_s=1.5, wall_s=2.0, items_per_s=1.5)


def test_a_gather_summary_is_written_with_its_keys_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "2026-01-01T00:00:00+0000")
    summary = RunSummary.of_gather(gather_spec(error_threshold=2, output_uri="az://c/out"), TALLY, [], False,
                                   "results/r/out.txt", TIMING)
    write_summary(str(tmp_path / "summary.json"), summary)
    assert (tmp_path / "summary.json").read_text() == """{
  "run_name": "r",
  "status": "succeeded",
  "items": 5,
  "succeeded": 4,
  "failed": 1,
  "mini_batches": 3,
  "failed_mini_batches": 1,
  "reused_mini_batches": 1,
  "thresholds": {
    "error_threshold": 2,
    "allowed_failed_count": null,
    "allowed_failed_percent": null
  },
  "threshold_breaches": [],
  "stopped_early": false,
  "output_action": "append_row",
  "output": "results/r/out.txt",
  "computed_items": 3,
  "reused_items": 2,
  "compute_s": 1.5,
  "wall_s": 2.0,
  "items_per_s": 1.5,
  "finished_at": "2026-01-01T00:00:00+0000",
  "output_uri": "az://c/out"
}
"""
    assert read_summary(str(tmp_path / "summary.json")) == summary


def test_a_run_over_a_threshold_has_no_output_and_no_upload():
    summary = RunSummary.of_gather(gather_spec(output_uri="az://c/out"), TALLY, ["1 failed item(s) > error_threshold 0"],
                                   True, "results/r/out.txt", TIMING)
    assert (summary.status, summary.output, summary.output_uri) == ("failed", None, ABSENT)
    assert "output_uri" not in summary.to_dict() and summary.to_dict()["output"] is None


def test_a_failed_run_names_its_error_and_the_shards_that_did_not_start(monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "T")
    summary = RunSummary.failed_run("r", "boom", start_failures=(StartFailure(2, "NameError: x"),))
    assert summary.to_json() == json.dumps({"run_name": "r", "status": "failed", "error": "boom", "output": None,
                                            "finished_at": "T", "start_failures": [{"shard": 2, "error": "NameError: x"}]},
                                           indent=2)
    interrupted = RunSummary.failed_run("r", "ctrl-c", status="interrupted").to_dict()
    assert list(interrupted) == ["run_name", "status", "error", "output", "finished_at"]


def test_a_summary_read_back_keeps_what_it_had_and_becomes_stale():
    text = json.dumps({"status": "succeeded", "items": 3, "future_key": [1]}, indent=2)
    summary = RunSummary.from_json(text)
    assert summary.to_json() == text
    assert (summary.items, summary.get("future_key"), summary.get("run_name", "?"), summary.run_name) == (3, [1], "?", ABSENT)
    assert summary.stale().to_dict() == {"status": "stale", "items": 3, "future_key": [1],
                                         "note": "a newer run started; this summary describes the run before it"}


def test_read_summary_names_a_missing_or_corrupt_file(tmp_path):
    with pytest.raises(ManifestError, match=r"summary .*summary.json' does not exist"):
        read_summary(str(tmp_path / "summary.json"))
    (tmp_path / "summary.json").write_text("[1]")
    with pytest.raises(ManifestError, match=r"summary .*summary.json' is corrupt: not a JSON object but list"):
        read_summary(str(tmp_path / "summary.json"))
