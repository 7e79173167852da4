"""The example configs in config/examples/ on data the example rules build (workflow/rules/examples.smk):
iris.yaml (tabular CSV, a scikit-learn classifier, csv output) and partition-per-column.yaml
(partition_keys over three CSV files)."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

pytestmark = pytest.mark.slow

IRIS = ["--configfile", "config/examples/iris.yaml", "--replace-workflow-config"]
PER_SPECIES = ["--configfile", "config/examples/partition-per-column.yaml", "--replace-workflow-config"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ADDED = ["group_species", "group_rows", "group_mean_petal_length", "petal_length_deviation"]


def ran(proc, rule):
    return f"rule {rule}:" in proc.stdout + proc.stderr


def summary(workflow, run_name):
    data = json.loads(workflow.read("results", run_name, "summary.json"))
    return {k: data[k] for k in ("status", "items", "succeeded", "failed", "mini_batches")}


def test_dry_runs_plan_the_example_rules_only_for_the_example_configs(workflow):
    demo = workflow.run("-n")
    assert not any(ran(demo, r) for r in ("iris_data", "iris_parts", "iris_model"))
    iris = workflow.run("-n", *IRIS)
    assert ran(iris, "iris_data") and ran(iris, "iris_model") and not ran(iris, "iris_parts")
    per_species = workflow.run("-n", *PER_SPECIES)
    assert ran(per_species, "iris_data") and ran(per_species, "iris_parts") and not ran(per_species, "iris_model")


def test_iris_example_keeps_the_input_columns_and_rows_and_adds_predictions(workflow):
    proc = workflow.run(*IRIS)
    assert ran(proc, "iris_data") and ran(proc, "iris_model") and not ran(proc, "iris_parts")

    data = pd.read_csv(workflow.path("resources", "examples", "iris", "iris.csv"))
    iris = load_iris()
    assert list(data.columns) == FEATURES + ["species"]
    assert np.array_equal(data[FEATURES].to_numpy(), iris.data)          # scikit-learn's iris, in its order
    assert list(data["species"]) == [iris.target_names[t] for t in iris.target]

    text = workflow.read("results", "iris", "iris_predictions.csv")
    header = "sepal_length,sepal_width,petal_length,petal_width,species,prediction"
    assert text.splitlines()[0] == header
    assert [line for line in text.splitlines() if line.startswith("sepal_length")] == [header]  # once
    out = pd.read_csv(workflow.path("results", "iris", "iris_predictions.csv"))
    assert len(out) == 150
    assert list(out.columns) == list(data.columns) + ["prediction"]
    pd.testing.assert_frame_equal(out[list(data.columns)], data)           # every row, in input order

    model = joblib.load(workflow.path("resources", "examples", "iris-model", "iris.joblib"))
    assert list(out["prediction"]) == list(model.predict(data[FEATURES]))  # each row's own prediction
    assert (out["prediction"] == out["species"]).mean() >= 0.9
    # 3858 bytes in mini-batches of 1KB: several mini-batches, merged back in order
    assert summary(workflow, "iris") == {"status": "succeeded", "items": 150, "succeeded": 150, "failed": 0,
                                         "mini_batches": 4}

    again = workflow.run(*IRIS)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_partition_per_column_example_gives_each_species_its_rows_once_with_its_key(workflow):
    proc = workflow.run(*PER_SPECIES)
    assert ran(proc, "iris_data") and ran(proc, "iris_parts") and not ran(proc, "iris_model")

    data = pd.read_csv(workflow.path("resources", "examples", "iris", "iris.csv"))
    parts = [pd.read_csv(workflow.path("resources", "examples", "iris-parts", f"part-{k}.csv")) for k in (1, 2, 3)]
    for part in parts:  # 50 rows each, every species in every file, not sorted by species
        assert len(part) == 50
        assert set(part["species"]) == {"setosa", "versicolor", "virginica"}
        assert (part["species"] != part["species"].shift()).sum() > 3
    rows = pd.concat(parts, ignore_index=True)   # the input in order: files by name, then rows
    assert sorted(rows["id"]) == list(range(150))
    pd.testing.assert_frame_equal(rows.sort_values("id").drop(columns="id").reset_index(drop=True), data)

    text = workflow.read("results", "iris-per-species", "iris_by_species.csv")
    header = ",".join(list(rows.columns) + ADDED)
    assert text.splitlines()[0] == header
    assert [line for line in text.splitlines() if line.startswith("id,")] == [header]   # once
    out = pd.read_csv(workflow.path("results", "iris-per-species", "iris_by_species.csv"))
    assert list(out.columns) == list(rows.columns) + ADDED
    assert len(out) == 150 and sorted(out["id"]) == list(range(150))           # every row exactly once

    # One mini-batch per species, in order of first appearance; each holds every row of its species
    # from all three files (file order, then row order), and its context names that species.
    order = list(rows["species"].unique())
    assert list(out["group_species"].drop_duplicates()) == order
    expected = pd.concat([rows[rows["species"] == s] for s in order], ignore_index=True)
    pd.testing.assert_frame_equal(out[list(rows.columns)], expected)
    assert list(out["group_species"]) == list(out["species"])
    assert set(out["group_rows"]) == {50}
    means = data.groupby("species")["petal_length"].mean()
    assert np.allclose(out["group_mean_petal_length"], out["species"].map(means).round(3), rtol=0, atol=1e-9)
    assert np.allclose(out["petal_length_deviation"],
                       (out["petal_length"] - out["species"].map(means)).round(3), rtol=0, atol=1e-9)
    assert summary(workflow, "iris-per-species") == {"status": "succeeded", "items": 150, "succeeded": 150,
                                                     "failed": 0, "mini_batches": 3}

    # The two examples share iris_data: the iris run reuses it and only trains the model.
    iris = workflow.run(*IRIS)
    assert ran(iris, "iris_model") and not ran(iris, "iris_data")
