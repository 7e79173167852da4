"""Hostile file names end to end: spaces, quotes, ``$``, backticks, semicolons, a newline, a
leading dash, bytes that are not UTF-8, a 255-byte name, the same base name in two folders, a
symlink to a file already listed and a symlink loop. Every file is processed (never through a
shell: the jobs read their settings from spec files), each result is one line of the merged file
with its line breaks escaped (``\\n``) and undecodable bytes as ``\\udcXX``, and a failing item
with such a name is named the same way in errors.jsonl."""

import json
import os

import pytest

from helpers import write

SCRIPT = """
    import os

    def run(mini_batch):
        out = []
        for path in mini_batch:
            if open(path, "rb").read().startswith(b"bad"):
                raise ValueError("bad " + path)
            out.append(path)
        return out
"""

NAMES = ["a b.txt", "quote'd.txt", 'dq"x.txt', "$HOME.txt", "`id`.txt", "semi;colon.txt", "new\nline.txt",
         "-rf.txt", "--help.txt", "é数😀.txt", "x" * 251 + ".txt", os.fsdecode(b"latin\xe9.txt"), "star*?.txt",
         "{braces}.txt", "back\\slash.txt"]


def _escaped(path):
    """How a result line shows ``path`` (snakebatch.formats.txt: line breaks escaped, lone surrogates
    as \\udcXX)."""
    return path.replace("\n", "\\n").encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.mark.slow
def test_hostile_names_are_each_processed_once_in_order_one_line_each(workflow):
    data = workflow.path("data")
    for name in NAMES:
        write(os.path.join(data, name), "ok\n")
    write(os.path.join(data, "one", "same.txt"), "ok\n")
    write(os.path.join(data, "two", "same.txt"), "ok\n")
    write(os.path.join(data, "two", "bad;`rm -rf x`\n.txt"), "bad\n")
    write(os.path.join(data, "two", os.fsdecode(b"bad\xff.txt")), "bad\n")
    os.symlink(os.path.join(data, "a b.txt"), os.path.join(data, "zz-link-to-a b.txt"))   # listed once, at a b.txt
    os.symlink(data, os.path.join(data, "loop"))   # a folder link back to the root: walked once
    write(workflow.path("scripts", "names.py"), SCRIPT)
    workflow.write_config({"run_name": "names", "input": {"path": "data"}, "entry_script": "scripts/names.py",
                           "mini_batch_size": 3, "append_row_file_name": "out.txt", "run_max_try": 1})
    workflow.run(cores=2)

    listed = sorted(os.path.join("data", n) for n in NAMES + ["one/same.txt", "two/same.txt"])
    bad = sorted([os.path.join("data", "two", "bad;`rm -rf x`\n.txt"), os.path.join("data", "two", os.fsdecode(b"bad\xff.txt"))])
    order = sorted(listed + bad)
    with open(workflow.path("results", "names", "out.txt"), "rb") as handle:
        merged = handle.read().decode("utf-8")   # valid UTF-8 whatever the names
    assert merged == "".join(_escaped(p) + "\n" for p in order if p not in bad)
    with open(workflow.path("results", "names", "errors.jsonl"), "rb") as handle:
        errors = [json.loads(line) for line in handle.read().decode("utf-8").splitlines()]
    assert [e["item"] for e in errors] == bad   # JSON's \\udcff escape reads back as the very name
    assert [e["exception"] for e in errors] == ["ValueError", "ValueError"]
    summary = json.loads(workflow.read("results", "names", "summary.json"))
    assert (summary["items"], summary["failed"]) == (len(order), 2)
    assert not os.path.exists(workflow.path("-rf.txt")) and os.path.exists(workflow.path("data", "-rf.txt"))
