"""The seed's own entry script and the Azure ML sample's version of it (scripts/prs/), unchanged
TensorFlow 1 code through tf.compat.v1, on the demo digits with the TF1 checkpoint that the
demo_tf1_model rule builds (config/examples/mnist-prs.yaml)."""

import json
import os

import pytest

pytestmark = pytest.mark.slow

CONFIG = ["--configfile", "config/examples/mnist-prs.yaml", "--replace-workflow-config"]


def check_run(workflow, proc, run_name):
    images = sorted(name for name in os.listdir(workflow.path("resources", "demo", "mnist")) if name.endswith(".png"))
    assert len(images) == 450
    lines = workflow.read("results", run_name, "mnist_outputs.txt").splitlines()
    assert [line.split(": ")[0] for line in lines] == images
    assert all(len(line.split(": ")[1]) == 1 and line.split(": ")[1] in "0123456789" for line in lines)
    summary = json.loads(workflow.read("results", run_name, "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["mini_batches"]) == (450, 450, 90)
    accuracy = json.loads(workflow.read("results", run_name, "demo_accuracy.json"))
    assert accuracy["scored"] == 450
    assert accuracy["accuracy"] >= 0.90
    assert f"demo accuracy: {accuracy['accuracy']:.4f}" in proc.stdout + proc.stderr
    return accuracy["accuracy"]


def test_seed_and_sample_scripts_score_the_demo_digits_with_a_tf1_checkpoint(demo_workflow):
    workflow = demo_workflow
    seed = workflow.run(*CONFIG)
    model = workflow.path("resources", "demo", "model-tf1")
    assert {"checkpoint", "mnist-tf.model.meta", "mnist-tf.model.index"} <= set(os.listdir(model))
    assert any(name.startswith("mnist-tf.model.data-") for name in os.listdir(model))
    check_run(workflow, seed, "mnist-prs")

    sample = workflow.run(*CONFIG, "--config", "entry_script=digit_identification_sample.py",
                          "run_name=mnist-prs-sample")
    assert "demo_tf1_model" not in sample.stdout + sample.stderr  # the checkpoint is reused
    check_run(workflow, sample, "mnist-prs-sample")
    # Same checkpoint, same pixels: both scripts predict the same digits.
    assert workflow.read("results", "mnist-prs-sample", "mnist_outputs.txt") == \
        workflow.read("results", "mnist-prs", "mnist_outputs.txt")
