"""The plan of one invocation: process_count_per_node auto resolved once, recorded in plan.json."""

import os

from snakebatch.settings.plan import PlanRecord, auto_process_count, read_plan, write_plan

RECORD = PlanRecord(run_name="r", process_count_per_node=6, shard_count=12, invocation="inv",
                    listing="listing-0123456789abcdef.list")


def test_plan_round_trips_through_plan_json(tmp_path):
    path = str(tmp_path / "results" / "r" / "plan.json")
    assert read_plan(path) is None
    write_plan(path, RECORD)
    assert read_plan(path) == RECORD
    assert os.listdir(tmp_path / "results" / "r") == ["plan.json"]   # written atomically, no temp left


def test_an_unreadable_plan_is_none(tmp_path):
    (tmp_path / "plan.json").write_text("{not json")
    assert read_plan(str(tmp_path / "plan.json")) is None


def test_auto_is_the_cores_given_else_the_recorded_plan_in_a_dry_run_else_the_machine():
    assert auto_process_count(3, True, dryrun=False, recorded=RECORD) == 3
    assert auto_process_count(3, True, dryrun=True, recorded=RECORD) == 3       # -n --cores 3
    assert auto_process_count(1, False, dryrun=True, recorded=RECORD) == 6      # -n: what the last run did
    assert auto_process_count(1, False, dryrun=True, recorded=None) == os.cpu_count()
    assert auto_process_count(None, False, dryrun=False, recorded=RECORD) == os.cpu_count()   # no --cores (cluster)


def test_more_shards_at_once_than_the_machine_has_cores_is_warned():
    from snakebatch.settings.plan import oversubscription_warning

    assert oversubscription_warning(8, 8, 2) == (
        "8 shards run at once (--cores 8) on this machine's 2 cores: each is a worker with its own copy of the "
        "model in memory, and they share the cores; --cores 2 (or process_count_per_node: 2) matches the machine")
    assert oversubscription_warning(8, 2, 2) is None      # 8 shards, but only 2 run at once
    assert oversubscription_warning(2, 8, 2) is None
    assert oversubscription_warning(16, None, 2) is None  # a cluster run: the shards run elsewhere
