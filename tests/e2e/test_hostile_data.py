"""Hostile data end to end: broken and odd images through the demo's own entry script, a 2 GB
sparse file in a file dataset, a CSV with a ragged row, a Parquet file with a corrupt footer, and
a CSV that changes while the run is going."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import write

pytestmark = pytest.mark.slow


def _errors(workflow, run):
    with open(workflow.path("results", run, "errors.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_broken_and_odd_images_fail_alone_naming_their_path_in_the_demo_script(demo_workflow):
    from PIL import Image

    workflow = demo_workflow
    digits = workflow.path("resources", "demo", "mnist")
    folder = workflow.path("hostile")
    os.makedirs(folder)
    for name in ("0.png", "1.png", "2.png"):
        shutil.copy(os.path.join(digits, name), os.path.join(folder, "a" + name))
    with Image.open(os.path.join(digits, "0.png")) as digit:
        digit.convert("RGB").save(os.path.join(folder, "b-rgb.png"))
        digit.convert("RGBA").resize((56, 56)).save(os.path.join(folder, "b-rgba-56.png"))
        digit.convert("P").save(os.path.join(folder, "b-palette.png"))
        digit.convert("I;16").save(os.path.join(folder, "b-16bit.png"))
        digit.convert("1").resize((10, 40)).save(os.path.join(folder, "b-1bit-10x40.png"))
    with open(os.path.join(digits, "1.png"), "rb") as handle:
        whole = handle.read()
    with open(os.path.join(folder, "c-truncated.png"), "wb") as handle:
        handle.write(whole[: len(whole) // 2])
    open(os.path.join(folder, "c-zero.png"), "wb").close()
    write(os.path.join(folder, "c-text.png"), "this is not an image\n")
    workflow.write_config({"run_name": "hostile", "input": {"path": "hostile", "pattern": "*.png"},
                           "entry_script": "digit_identification.py", "source_directory": "scripts",
                           "models": {"mnist": "resources/demo/model"}, "mini_batch_size": 4,
                           "append_row_file_name": "out.txt", "process_count_per_node": 1, "run_max_try": 1})
    workflow.run("results/hostile/_SUCCESS", cores=1)

    good = ["a0.png", "a1.png", "a2.png", "b-16bit.png", "b-1bit-10x40.png", "b-palette.png", "b-rgb.png",
            "b-rgba-56.png"]
    lines = workflow.read("results", "hostile", "out.txt").splitlines()
    assert [line.split(": ")[0] for line in lines] == good
    assert all(len(line.split(": ")[1]) == 1 and line.split(": ")[1].isdigit() for line in lines)
    prediction = dict(line.split(": ") for line in lines)
    assert prediction["b-rgb.png"] == prediction["b-palette.png"] == prediction["a0.png"]  # same pixels
    errors = _errors(workflow, "hostile")
    assert [(os.path.basename(e["item"]), e["exception"]) for e in errors] == [
        ("c-text.png", "ValueError"), ("c-truncated.png", "ValueError"), ("c-zero.png", "ValueError")]
    for e in errors:
        assert e["message"].startswith(f"{e['item']}: not a readable image (")
    assert "c-truncated.png: not a readable image (OSError: " in errors[1]["message"]
    assert "UnidentifiedImageError: cannot identify image file" in errors[2]["message"]


SIZE_SCRIPT = """
    import os

    def run(mini_batch):
        return [f"{os.path.basename(p)} {os.path.getsize(p)}" for p in mini_batch]
"""


def test_a_2gb_sparse_file_is_never_read_by_snakebatch(workflow):
    write(workflow.path("data", "a.bin"), "a\n")
    with open(workflow.path("data", "big.bin"), "wb") as handle:
        handle.truncate(2 * 1024 ** 3)   # 2 GiB, no block on disk
    write(workflow.path("scripts", "sizes.py"), SIZE_SCRIPT)
    workflow.write_config({"run_name": "big", "input": {"path": "data"}, "entry_script": "scripts/sizes.py",
                           "mini_batch_size": 1, "append_row_file_name": "out.txt"})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the largest resident set of any process of the run (snakemake, partition, runners, workers, gather)
    probe = ("import resource, subprocess, sys; subprocess.run([sys.executable, '-m', 'snakemake', '--cores', '2'], "
             "check=True, capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=workflow.root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_kb = int(proc.stdout.split()[-1])
    assert peak_kb < 512 * 1024, f"a process of the run held {peak_kb} KB"
    assert workflow.read("results", "big", "out.txt") == f"a.bin 2\nbig.bin {2 * 1024 ** 3}\n"


ROWS_SCRIPT = """
    def run(mini_batch):
        return mini_batch
"""


def _tabular(workflow, run, path, **config):
    write(workflow.path("scripts", "rows.py"), ROWS_SCRIPT)
    workflow.write_config({"run_name": run, "input": {"type": "tabular", "path": path}, "entry_script": "scripts/rows.py",
                           "mini_batch_size": 40, "append_row_format": "csv", "append_row_file_name": "out.csv",
                           "process_count_per_node": 1, **config})


def test_a_ragged_csv_row_fails_its_mini_batch_naming_the_file_and_line(workflow):
    rows = [f"{i},{i * i}" for i in range(12)]
    rows[7] = "7,49,extra"
    write(workflow.path("t.csv"), "n,sq\n" + "\n".join(rows) + "\n")
    _tabular(workflow, "ragged", "t.csv")
    proc = workflow.run(check=False)
    assert proc.returncode == 0, proc.stderr
    # the mini-batch holding the ragged record (records 0-7: its byte range) fails whole, named by
    # file and lines, with pandas' own line number; the other mini-batch is merged
    assert workflow.read("results", "ragged", "out.csv") == "n,sq\n" + "".join(f"{i},{i * i}\n" for i in range(8, 12))
    assert [(e["item"], e["exception"], e["message"]) for e in _errors(workflow, "ragged")] == [
        ("t.csv, lines 2-9", "TableReadError",
         "ParserError reading t.csv, lines 2-9: Error tokenizing data. C error: Expected 2 fields in line 9, saw 3")]
    summary = json.loads(workflow.read("results", "ragged", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["failed"]) == (12, 4, 8)


def test_a_parquet_file_with_a_corrupt_footer_fails_the_run_naming_it(workflow):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"n": list(range(50))}), workflow.path("ok.parquet"))
    with open(workflow.path("ok.parquet"), "rb") as handle:
        data = handle.read()
    os.makedirs(workflow.path("tables"))
    shutil.copy(workflow.path("ok.parquet"), workflow.path("tables", "a.parquet"))
    with open(workflow.path("tables", "b.parquet"), "wb") as handle:
        handle.write(data[:-12] + b"\0" * 8 + data[-4:])   # footer length and metadata overwritten
    _tabular(workflow, "pq", "tables")
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    assert ("snakebatch partition: error: input file 'tables/b.parquet' cannot be read as Parquet: "
            "Couldn't deserialize thrift") in proc.stderr
    assert "Traceback" not in proc.stderr.split("snakebatch: run 'pq' failed.")[-1]
    assert not os.path.exists(workflow.path("results", "pq", "_SUCCESS"))
    assert not os.path.exists(workflow.path("results", "pq", "out.csv"))


GROWING_SCRIPT = """
    import os

    def run(mini_batch):
        flag = os.environ["GROW_FLAG"]
        if not os.path.exists(flag):   # once: a writer appends to the table while the run reads it
            open(flag, "w").close()
            with open(os.environ["GROW_TABLE"], "a") as handle:
                handle.write("".join(f"{i},{i * i}\\n" for i in range(100, 110)))
        return mini_batch
"""


def test_a_csv_that_changes_during_the_run_is_never_merged_half_old_and_a_rerun_reads_it_whole(workflow):
    write(workflow.path("t.csv"), "n,sq\n" + "".join(f"{i},{i * i}\n" for i in range(30)))
    _tabular(workflow, "grow", "t.csv", environment_variables={"GROW_FLAG": workflow.path("grew"),
                                                              "GROW_TABLE": workflow.path("t.csv")})
    write(workflow.path("scripts", "rows.py"), GROWING_SCRIPT)
    first = workflow.run(check=False)
    assert os.path.exists(workflow.path("grew"))
    errors = _errors(workflow, "grow")
    assert errors and all("changed after it was partitioned" in e["message"] for e in errors), first.stderr
    workflow.run()
    assert workflow.read("results", "grow", "out.csv") == (
        "n,sq\n" + "".join(f"{i},{i * i}\n" for i in list(range(30)) + list(range(100, 110))))
    assert _errors(workflow, "grow") == []
