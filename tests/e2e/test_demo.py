"""The bundled demo (README command 1) in a fresh copy: TensorFlow, the real entry script."""

import json
import os

import pytest

pytestmark = pytest.mark.slow


def test_demo_predicts_every_test_digit_in_file_order(demo_workflow):
    workflow = demo_workflow
    proc = workflow.run()
    images = sorted(name for name in os.listdir(workflow.path("resources", "demo", "mnist")) if name.endswith(".png"))
    assert len(images) == 450
    lines = workflow.read("results", "mnist", "mnist_outputs.txt").splitlines()
    assert [line.split(": ")[0] for line in lines] == images
    assert all(line.split(": ")[1] in "0123456789" and len(line.split(": ")[1]) == 1 for line in lines)
    accuracy = json.loads(workflow.read("results", "mnist", "demo_accuracy.json"))
    assert accuracy["scored"] == 450
    assert accuracy["accuracy"] >= 0.90
    assert f"demo accuracy: {accuracy['accuracy']:.4f}" in proc.stdout + proc.stderr
    assert "oneDNN" not in proc.stdout + proc.stderr and "absl" not in proc.stdout + proc.stderr
    summary = json.loads(workflow.read("results", "mnist", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["mini_batches"]) == (450, 450, 90)

    again = workflow.run()
    assert "Nothing to be done" in again.stdout + again.stderr


def test_tensorflow_start_up_chatter_stays_in_the_logs(demo_resources):
    with open(os.path.join(demo_resources, "console.txt"), encoding="utf-8") as handle:
        console = handle.read()
    assert "oneDNN" not in console and "absl::InitializeLog" not in console
    assert "demo model: MLP 784-300-100-10 trained on 1347 digits (held-out accuracy " in console
    with open(os.path.join(demo_resources, "resources", "demo", "logs", "demo_model.log"), encoding="utf-8") as handle:
        log = handle.read()
    assert "demo model: MLP 784-300-100-10" in log
