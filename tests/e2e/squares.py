"""The workflow most e2e tests run: files item000.txt.. holding i*i, an entry script that answers
"itemNNN.txt: i*i" and raises ValueError for a file whose text starts with "bad"."""

import base64
import json
import re

from helpers import write

SCRIPT = """
    import os

    def init():
        pass

    def run(mini_batch):
        out = []
        for path in mini_batch:
            text = open(path).read().strip()
            if text.startswith("bad"):
                raise ValueError("unreadable " + os.path.basename(path))
            out.append(os.path.basename(path) + ": " + text)
        return out
"""


def setup(workflow, n=23, **config):
    for i in range(n):
        write(workflow.path("data", f"item{i:03d}.txt"), f"{i * i}\n")
    write(workflow.path("scripts", "square.py"), SCRIPT)
    workflow.write_config({"run_name": "sq", "input": {"path": "data", "pattern": "*.txt"},
                           "entry_script": "square.py", "source_directory": "scripts",
                           "mini_batch_size": 4, "append_row_file_name": "out.txt", **config})


def expected(n, skip=()):
    """The merged output of items 0..n-1 without those in ``skip``."""
    return "".join(f"item{i:03d}.txt: {i * i}\n" for i in range(n) if i not in skip)


def report_results(html_text):
    """The ``results`` object of Snakemake's report page: path -> record with the file's bytes."""
    match = re.search(r"var results = (\{.*?\});\n", html_text, re.S)
    assert match, "no results in the report"
    results = json.loads(match.group(1))
    for record in results.values():
        header, _, payload = record["data_uri"].partition(",")
        assert header.endswith(";base64"), header
        record["bytes"] = base64.b64decode(payload)
    return results
