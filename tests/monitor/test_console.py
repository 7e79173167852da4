"""What the console is told at the end of a run (snakebatch.monitor.console)."""

import json

from snakebatch.monitor.console import failed_items_note


def test_a_run_with_tolerated_failures_names_the_first_three_and_the_report(tmp_path):
    errors = tmp_path / "errors.jsonl"
    errors.write_text("".join(json.dumps({"item": f"data/f{i}.jpg", "error": f"ValueError: bad f{i}"}) + "\n"
                              for i in range(5)))
    assert failed_items_note(str(errors), 5) == (
        "Failed items (the first 3 of 5):\n"
        "  data/f0.jpg: ValueError: bad f0\n"
        "  data/f1.jpg: ValueError: bad f1\n"
        "  data/f2.jpg: ValueError: bad f2\n"
        f"Every failed item with its traceback: {errors}")


def test_one_failed_item_is_named_with_its_exception(tmp_path):
    errors = tmp_path / "errors.jsonl"
    errors.write_text(json.dumps({"item": "data/x.csv, record 17", "error": "KeyError: 'id'"}) + "\n")
    assert failed_items_note(str(errors), 1) == (
        "Failed items:\n  data/x.csv, record 17: KeyError: 'id'\n"
        f"Every failed item with its traceback: {errors}")
