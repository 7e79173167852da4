"""The three Azure ML ParallelRunStep samples (Azure/MachineLearningNotebooks, how-to-use-azureml/
machine-learning-pipelines/parallel-run/) with their entry scripts' contract unchanged
(scripts/prs/), a config each in config/examples/ and data the example rules build locally:
iris_score.py (tabular, --model_name, Model.get_model_path, a DataFrame back), total_income.py
(partition per column) and total_file_size.py (partition per folder, mini_batch_context.dataset).
Each test asserts the exact merged output."""

import glob
import json
import os

import pytest

pytestmark = pytest.mark.slow


def config(name):
    return ["--configfile", f"config/examples/{name}.yaml", "--replace-workflow-config"]


def summary(workflow, run_name):
    data = json.loads(workflow.read("results", run_name, "summary.json"))
    return {k: data[k] for k in ("status", "items", "succeeded", "failed", "mini_batches")}


def user_logs(workflow, run_name, stream):
    text = ""
    for path in sorted(glob.glob(workflow.path("results", run_name, "logs", "user", stream, "*"))):
        with open(path, encoding="utf-8") as handle:
            text += handle.read()
    return text


def input_lines(workflow, *path):
    """The data rows of a CSV the example rules wrote, as ParallelRunStep's txt output writes a
    DataFrame row (space-separated; these files hold no quotes or spaces in values)."""
    rows = workflow.read(*path).splitlines()[1:]
    assert rows and not any('"' in row or " " in row for row in rows)
    return [row.replace(",", " ") for row in rows]


def test_partition_per_folder_sample_one_mini_batch_per_user_and_genres_with_its_dataset(workflow):
    workflow.run(*config("prs-partition-per-folder"))

    assert workflow.read("results", "prs-file-size", "file_size_outputs.txt") == (
        "disco.wav,1644,1.0,user1,disco,1644\n"
        "orchestra.wav,3244,1.0,user1,orchestra,3244\n"
        "piano.wav,844,1.0,user2,piano,844\n"
        "spirituality.wav,2444,1.0,user3,spirituality,2444\n"
        "piano.wav,844,0.5,user4,piano,1688\n"
        "piano.wav,844,0.5,user4,piano,1688\n")
    assert summary(workflow, "prs-file-size") == {"status": "succeeded", "items": 6, "succeeded": 6, "failed": 0,
                                                  "mini_batches": 5}
    stdout = user_logs(workflow, "prs-file-size", "stdout")
    base = "resources/examples/partition-per-folder/dataset_partition_test"
    # sorted: with balance_shards an idle shard job may run another shard's mini-batch, so the
    # workers' logs (read in shard order) need not hold the mini-batches in input order
    assert sorted(line for line in stdout.splitlines() if line.startswith("partition_key_value = ")) == [
        "partition_key_value = {'user': 'user1', 'genres': 'disco'}",
        "partition_key_value = {'user': 'user1', 'genres': 'orchestra'}",
        "partition_key_value = {'user': 'user2', 'genres': 'piano'}",
        "partition_key_value = {'user': 'user3', 'genres': 'spirituality'}",
        "partition_key_value = {'user': 'user4', 'genres': 'piano'}"]
    assert ("dataset = FileDataset\n{\n  \"source\": [\n"
            f"    \"{base}/user4/fall/piano.wav\",\n    \"{base}/user4/spring/piano.wav\"\n  ],\n"
            "  \"partition_key_value\": {\n    \"user\": \"user4\",\n    \"genres\": \"piano\"\n  }\n}\n"
            "file_count_of_mini_batch = 2\ntotal_file_size_of_mini_batch = 1688\n") in stdout


def test_iris_sample_scores_every_row_with_the_model_named_by_its_argument(workflow):
    workflow.run(*config("prs-iris"))

    rows = input_lines(workflow, "resources", "examples", "prs-iris", "iris.csv")
    assert workflow.read("resources", "examples", "prs-iris", "iris.csv").splitlines()[0] == (
        "sepal.length,sepal.width,petal.length,petal.width")
    # the pickled LogisticRegression's class numbers (0 setosa, 1 versicolor, 2 virginica), row by row
    predictions = ("0" * 50 + "1" * 20 + "2" + "1" * 6 + "2" + "1" * 5 + "2" + "1" * 16
                   + "2" * 6 + "1" + "2" * 43)
    assert len(rows) == len(predictions) == 150
    text = workflow.read("results", "prs-iris", "iris_outputs.txt")
    assert text == "".join(f"{row} {p}\n" for row, p in zip(rows, predictions))
    assert text.splitlines()[:2] == ["5.1 3.5 1.4 0.2 0", "4.9 3.0 1.4 0.2 0"]
    assert summary(workflow, "prs-iris") == {"status": "succeeded", "items": 150, "succeeded": 150, "failed": 0,
                                             "mini_batches": 1}
    stderr = user_logs(workflow, "prs-iris", "stderr")
    assert stderr.count("init() is called.") == 1
    assert stderr.count("run() is called with: ") == 1


def test_partition_per_column_sample_sums_income_per_store_and_brand(workflow):
    workflow.run(*config("prs-partition-per-column"))

    rows = input_lines(workflow, "resources", "examples", "oj-sales", "oj.csv")
    assert len(rows) == 36
    income = {"2": "42.0", "5": "43.0", "8": "45.0"}   # 4 weeks x INCOME 10.5, 10.75, 11.25
    groups = [(store, brand) for store in ("2", "5", "8") for brand in ("dominicks", "minute.maid", "tropicana")]
    expected = [f"{row} {income[store]}" for store, brand in groups
                for row in rows if row.split(" ")[16:] == [store, brand]]
    text = workflow.read("results", "prs-oj-sales", "revenue_outputs.txt")
    assert text == "".join(line + "\n" for line in expected)
    assert text.splitlines()[0] == ("1990-06-14 4000 8.294 0 1.5 0.125 0.25 10.5 0.375 0.125 0.5 0.25 2.5 1.25 1.75 "
                                    "0.5 2 dominicks 42.0")
    assert summary(workflow, "prs-oj-sales") == {"status": "succeeded", "items": 36, "succeeded": 36, "failed": 0,
                                                 "mini_batches": 9}
    stdout = user_logs(workflow, "prs-oj-sales", "stdout")
    assert sorted(line for line in stdout.splitlines() if line.startswith("total_income = ")) == (
        ["total_income = 42.0"] * 3 + ["total_income = 43.0"] * 3 + ["total_income = 45.0"] * 3)
    assert os.path.basename(workflow.path("scripts", "prs", "total_income.py")) in stdout
