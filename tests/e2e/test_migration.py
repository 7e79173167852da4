"""ParallelRunStep entry scripts run unchanged (issue 5): a file dataset with Model, a tabular one
with EntryScript().logger and parse_known_args, partition keys with mini_batch_context; and the
known ParallelRunStep pitfalls avoided."""

import glob
import json
import os

import pandas as pd
import pytest

from helpers import write

pytestmark = pytest.mark.slow

FILE_SCRIPT = '''
import os
from azureml.core.model import Model
from azureml_user.parallel_run import EntryScript


def init():
    global lookup
    model_dir = Model.get_model_path("lookup")
    with open(os.path.join(model_dir, "labels.txt")) as f:
        lookup = dict(line.strip().split("=") for line in f)
    EntryScript().logger.info("model loaded from %s", model_dir)


def run(mini_batch):
    result_list = []
    for file_path in mini_batch:
        with open(file_path) as f:
            key = f.read().strip()
        result_list.append("{}: {}".format(os.path.basename(file_path), lookup[key]))
    return result_list
'''

TABULAR_SCRIPT = '''
import argparse
from azureml_user.parallel_run import EntryScript


def init():
    global args
    parser = argparse.ArgumentParser(description="scale")
    parser.add_argument("--factor", type=int, dest="factor")
    args, _ = parser.parse_known_args()
    EntryScript().logger.info("factor %s", args.factor)


def run(mini_batch):
    logger = EntryScript().logger
    logger.info("%d rows", len(mini_batch))
    mini_batch["scaled"] = mini_batch["value"] * args.factor
    return mini_batch
'''

PARTITION_SCRIPT = '''
from azureml_user.parallel_run import EntryScript


def init():
    pass


def run(mini_batch, mini_batch_context):
    key = mini_batch_context.partition_key_value
    EntryScript().logger.info("group %s: %d rows", key, len(mini_batch))
    mini_batch["group_total"] = mini_batch["value"].sum()
    mini_batch["group"] = key["store"]
    return mini_batch
'''


def test_a_file_dataset_script_with_model_runs_unchanged(workflow):
    for i in range(7):
        write(workflow.path("data", f"img{i}.txt"), f"k{i % 3}\n")
    write(workflow.path("model", "labels.txt"), "k0=zero\nk1=one\nk2=two\n")
    write(workflow.path("scripts", "prs", "score.py"), FILE_SCRIPT)
    workflow.write_config({"run_name": "prs-file", "input": {"path": "data"}, "source_directory": "scripts/prs",
                           "entry_script": "score.py", "models": {"lookup": "model"}, "mini_batch_size": "2",
                           "append_row_file_name": "out.txt"})
    workflow.run()
    assert workflow.read("results", "prs-file", "out.txt") == "".join(
        f"img{i}.txt: {['zero', 'one', 'two'][i % 3]}\n" for i in range(7))
    stderr_logs = "".join(open(p).read() for p in glob.glob(workflow.path("results", "prs-file", "logs", "user",
                                                                          "stderr", "*.txt")))
    assert "model loaded from " in stderr_logs


def test_a_tabular_script_with_logger_and_parse_known_args_runs_unchanged(workflow):
    pd.DataFrame({"id": range(6), "value": [1.5, 2.0, 3.0, 4.0, 5.5, 6.0]}).to_csv(workflow.path("t.csv"), index=False)
    write(workflow.path("scripts", "prs", "scale.py"), TABULAR_SCRIPT)
    workflow.write_config({"run_name": "prs-tab", "input": {"path": "t.csv", "type": "tabular"},
                           "source_directory": "scripts/prs", "entry_script": "scale.py",
                           "arguments": ["--factor", 10, "--append_row_dataframe_header", True,
                                         "--progress_update_timeout", 600],
                           "mini_batch_size": 12, "append_row_file_name": "out.txt"})
    proc = workflow.run()
    text = workflow.read("results", "prs-tab", "out.txt")
    assert text == ("id value scaled\n"
                    "0 1.5 15.0\n1 2.0 20.0\n2 3.0 30.0\n3 4.0 40.0\n4 5.5 55.0\n5 6.0 60.0\n")
    assert json.loads(workflow.read("results", "prs-tab", "summary.json"))["mini_batches"] > 1   # header once
    assert "snakebatch: warning: arguments: --progress_update_timeout tunes ParallelRunStep's agents" in proc.stderr
    logs = "".join(open(p).read() for p in glob.glob(workflow.path("results", "prs-tab", "logs", "user", "stderr", "*")))
    assert "factor 10" in logs and " rows" in logs


def test_a_partition_keys_script_with_mini_batch_context_runs_unchanged(workflow):
    pd.DataFrame({"store": ["a", "b", "a"], "value": [1, 2, 3]}).to_csv(workflow.path("s1.csv"), index=False)
    pd.DataFrame({"store": ["b", "c", "a"], "value": [4, 5, 6]}).to_csv(workflow.path("s2.csv"), index=False)
    write(workflow.path("scripts", "prs", "groups.py"), PARTITION_SCRIPT)
    workflow.write_config({"run_name": "prs-keys", "input": {"path": ["s1.csv", "s2.csv"], "type": "tabular"},
                           "source_directory": "scripts/prs", "entry_script": "groups.py",
                           "partition_keys": ["store"], "append_row_format": "csv",
                           "append_row_file_name": "out.csv"})
    workflow.run()
    assert workflow.read("results", "prs-keys", "out.csv") == (
        "store,value,group_total,group\n"
        "a,1,10,a\na,3,10,a\na,6,10,a\n"
        "b,2,6,b\nb,4,6,b\n"
        "c,5,5,c\n")


def test_init_creating_the_same_output_folder_in_every_worker_does_not_race(workflow):
    for i in range(8):
        write(workflow.path("data", f"f{i}.txt"), f"{i}\n")
    write(workflow.path("scripts", "prs", "mk.py"), '''
import os, time
from azureml_user.parallel_run import EntryScript

def init():
    global out
    out = os.path.join(EntryScript().output_dir, "predictions")
    if not os.path.exists(out):     # the classic check-then-create race between workers
        time.sleep(0.5)
        os.makedirs(out)

def run(mini_batch):
    for path in mini_batch:
        with open(os.path.join(out, os.path.basename(path)), "w") as f:
            f.write("done")
    return mini_batch
''')
    workflow.write_config({"run_name": "race", "input": {"path": "data"}, "source_directory": "scripts/prs",
                           "entry_script": "mk.py", "mini_batch_size": 1, "process_count_per_node": 4,
                           "output_action": "summary_only"})
    workflow.run(cores=4)
    assert sorted(os.listdir(workflow.path("results", "race", "outputs", "predictions"))) == [f"f{i}.txt" for i in range(8)]
    summary = json.loads(workflow.read("results", "race", "summary.json"))
    assert (summary["status"], summary["succeeded"]) == ("succeeded", 8)
    errors = "".join(open(p).read() for p in glob.glob(workflow.path("results", "race", "logs", "user", "error", "*")))
    assert "FileExistsError" in errors   # the race did happen: the losing workers' init() was retried


def test_a_script_reads_a_file_next_to_itself_and_its_prints_land_in_the_stdout_log(workflow):
    write(workflow.path("data", "a.txt"), "x\n")
    write(workflow.path("scripts", "prs", "labels.json"), '{"x": "ex"}')
    write(workflow.path("scripts", "prs", "near.py"), '''
import json, os

def init():
    global labels
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "labels.json")) as f:
        labels = json.load(f)
    print("init printed this")

def run(mini_batch):
    print("run saw", len(mini_batch), "file(s)")
    return [labels[open(p).read().strip()] for p in mini_batch]
''')
    workflow.write_config({"run_name": "near", "input": {"path": "data"}, "source_directory": "scripts/prs",
                           "entry_script": "near.py", "process_count_per_node": 1, "append_row_file_name": "out.txt"})
    workflow.run()
    assert workflow.read("results", "near", "out.txt") == "ex\n"
    assert workflow.read("results", "near", "logs", "user", "stdout", "shard-00000.stdout.txt") == (
        "init printed this\nrun saw 1 file(s)\n")
