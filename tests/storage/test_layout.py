"""The run layout names every path under results/{run_name}/."""

import os

from snakebatch.storage.layout import RunLayout, shard_id


def test_paths_of_a_run_folder():
    layout = RunLayout.for_run("mnist")
    assert layout.root == os.path.join("results", "mnist")
    assert layout.manifest(3) == "results/mnist/partition/shard-00003.json"
    assert layout.manifest("{shard}") == "results/mnist/partition/shard-{shard}.json"
    assert layout.shard_result(12) == "results/mnist/shards/shard-00012.jsonl"
    assert layout.progress(0) == "results/mnist/progress/shard-00000.json"
    assert layout.merged("out.txt") == "results/mnist/out.txt"
    assert (layout.summary, layout.errors, layout.success_marker) == (
        "results/mnist/summary.json", "results/mnist/errors.jsonl", "results/mnist/_SUCCESS")
    assert layout.processed_mini_batches == "results/mnist/logs/sys/job_report/processed_mini-batches.csv"
    assert layout.stage_log("gather") == "results/mnist/logs/gather.log"
    assert layout.shard_console_log("{shard}") == "results/mnist/logs/sys/node/shard-{shard}.console.log"
    assert layout.shard_logs(1) == {
        "stdout": "results/mnist/logs/user/stdout/shard-00001.stdout.txt",
        "stderr": "results/mnist/logs/user/stderr/shard-00001.stderr.txt",
        "error": "results/mnist/logs/user/error/shard-00001.txt",
        "node": "results/mnist/logs/sys/node/shard-00001.log",
        "stack": "results/mnist/logs/sys/node/shard-00001.stack.txt",
    }
    assert shard_id(7) == "00007"


def test_absolute_keeps_the_shape(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = RunLayout.for_run("r").absolute()
    assert layout.store_dir == str(tmp_path / "results" / "r" / "minibatches")
    assert layout.outputs_dir == str(tmp_path / "results" / "r" / "outputs")


def test_the_partition_listing_plan_and_markers():
    layout = RunLayout.for_run("r")
    fp = "0123456789abcdef" * 4
    assert layout.listing(fp) == "results/r/partition/listing-0123456789abcdef.list"
    assert layout.listed(fp) == "results/r/partition/listed-0123456789abcdef.list"
    assert layout.listing("unlisted") == "results/r/partition/listing-unlisted.list"
    assert layout.plan == "results/r/plan.json"
    assert layout.shard_unfinished(3) == "results/r/shards/shard-00003.unfinished"
    assert layout.shard_unfinished(3, alternate=True) == "results/r/shards/shard-00003.unfinished-again"
    assert layout.demo_accuracy == "results/r/demo_accuracy.json"


def test_a_job_finds_its_run_folder_from_its_files():
    layout = RunLayout.for_run("r")
    assert RunLayout.of_shard_result(layout.shard_result(2)) == layout
    assert RunLayout.of_partition_file(layout.manifest(0)) == layout
    assert RunLayout.of_partition_file(layout.listing("unlisted")) == layout
    assert RunLayout.of_run_file(layout.success_marker) == layout


def test_the_store_item_index_claims_gpu_and_module_paths():
    layout = RunLayout.for_run("r")
    key = "ab" + "0" * 62
    fp = "f" * 64
    assert layout.store.root == layout.store_dir == "results/r/minibatches"
    assert layout.store.result(key) == f"results/r/minibatches/ab/{key}.json"
    assert layout.store.table(key) == f"results/r/minibatches/ab/{key}.arrow"
    assert layout.store.items_dir == "results/r/minibatches/items"
    assert layout.store.item_index_dir(fp) == "results/r/minibatches/items/" + "f" * 32
    assert layout.store.item_index_file(fp, 3, 41, 7) == "results/r/minibatches/items/" + "f" * 32 + "/00003-41-7.idx"
    assert layout.store.compacted_index_file(fp, 7) == ("results/r/minibatches/items/" + "f" * 32
                                                        + "/+compacted-00000000000000000007.idx")
    assert layout.store.upkeep_lock == "results/r/minibatches/items/.upkeep.lock"
    # a compacted file sorts before every writer's file
    assert sorted(["00000-1-1.idx", "+compacted-00000000000000000009.idx"])[0].startswith("+compacted-")
    assert layout.claims_folder("inv") == "results/r/claims/inv"
    assert layout.claim("inv", 12, 2) == "results/r/claims/inv/000000012.2"
    assert layout.hand_off("inv", 12) == "results/r/claims/inv/000000012.result.json"
    assert layout.gpu_lock(1) == "results/r/gpus/gpu-1.lock"
    assert layout.modules_record == "results/r/entry_script_modules.json"
    assert layout.modules_record_lock == "results/r/entry_script_modules.json.lock"
    assert layout.node_logs_dir == "results/r/logs/sys/node/"
    assert RunLayout.shard_name(layout.shard_result(3)) == "00003"
    assert RunLayout.shard_name(layout.shard_unfinished(12)) == "00012"
