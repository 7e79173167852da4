"""Hostile starts and reruns (issue 21): an init() that fails in two runs in a row, each run
reporting its own failure and leaving no file dated in the future; a results folder that cannot
be used at start (a file in its way, a read-only or full disk), reported as one snakebatch line
naming the path and the OS cause."""

import os
import subprocess
import sys
import time

import pytest

from helpers import write
from squares import expected, setup

pytestmark = pytest.mark.slow

FAILING_INIT = "def init():\n    raise RuntimeError('model gone')\n\n\ndef run(mini_batch):\n    return []\n"


def _future_files(root):
    now = time.time() + 5
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names
            if os.stat(os.path.join(d, n), follow_symlinks=False).st_mtime > now]


def test_an_init_that_fails_in_two_runs_in_a_row_is_reported_by_each_and_no_file_is_dated_ahead(workflow):
    setup(workflow, n=6, mini_batch_size=2)
    write(workflow.path("scripts", "square.py"), FAILING_INIT)
    for attempt in range(2):
        proc = workflow.run(check=False)
        console = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "clock skew" not in console and "older modification time" not in console, console[-3000:]
        assert "No snakebatch stage reported an error" not in console
        tail = proc.stderr.split("snakebatch: run 'sq' failed.")[-1]
        assert "The run failed: the entry script failed to start in 2 of 2 shard(s)." in tail, tail
        assert "failed 3 times in a row: RuntimeError: model gone" in tail
        assert "infer_shard" in proc.stdout + proc.stderr.split("Job stats:")[-1].split("Select jobs")[0]
        assert _future_files(workflow.path("results")) == []
        status = subprocess.run([sys.executable, "-m", "snakebatch", "status", "results/sq"], cwd=workflow.root,
                                env={**os.environ, "PYTHONPATH": workflow.path("workflow")},
                                capture_output=True, text=True, timeout=60)
        assert "init() of entry_script" in status.stdout and "RuntimeError: model gone" in status.stdout, status.stdout
    write(workflow.path("scripts", "square.py"), "def init():\n    pass\n\n\n" + "def run(mini_batch):\n"
          "    import os\n    return [os.path.basename(p) + ': ' + open(p).read().strip() for p in mini_batch]\n")
    workflow.run()
    assert workflow.read("results", "sq", "out.txt") == expected(6)


ENOSPC_HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "enospc")


def _mount_tmpfs(folder, *options):
    """A 1 MB tmpfs on ``folder`` (made) with ``options``; False where this machine does not let
    root mount one (or SNAKEBATCH_TEST_NO_MOUNT is set)."""
    os.makedirs(folder, exist_ok=True)
    if os.geteuid() != 0 or os.environ.get("SNAKEBATCH_TEST_NO_MOUNT"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=1m",) + options), "tmpfs", folder],
                          capture_output=True).returncode == 0


def _unusable_run(workflow, env=None):
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=workflow.root, env=env,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for raw in ("Traceback", "[Errno", "NotADirectoryError", "PermissionError", "OSError"):
        assert raw not in output, output[-3000:]
    assert "infer_shard" not in output   # nothing started
    return output


@pytest.mark.parametrize("obstacle", ["file", "read-only", "full"])
def test_a_results_folder_that_cannot_be_used_fails_at_start_in_one_line_naming_the_path_and_cause(
        workflow, obstacle):
    setup(workflow, n=6, mini_batch_size=2)
    folder = workflow.path("results", "sq")
    mounted, env = False, None
    if obstacle == "file":
        write(folder, "in the way\n")
        cause = "cannot write 'results/sq': Not a directory (errno 20)"
    elif obstacle == "read-only":
        mounted = _mount_tmpfs(folder, "ro")
        if not mounted:
            pytest.skip("a read-only folder needs a read-only mount (tests run as root: chmod does not stop root)")
        cause = "cannot write 'results/sq/.tmp-probe-"
    else:
        mounted = _mount_tmpfs(folder)
        if mounted:   # a real full disk: a ballast fills it
            with open(os.path.join(folder, "ballast"), "wb") as handle:
                with pytest.raises(OSError):
                    while True:
                        handle.write(b"x" * 65536)
                        handle.flush()
        else:         # ENOSPC injected at fsync (tests/e2e/enospc/sitecustomize.py)
            write(workflow.path("disk-full"), "")
            env = {"PYTHONPATH": ENOSPC_HOOK, "HOSTILE_ENOSPC_FLAG": workflow.path("disk-full"),
                   "HOSTILE_ENOSPC_PATTERN": r"/results/sq/\.tmp-probe-"}
        cause = "cannot write 'results/sq/.tmp-probe-"
    try:
        output = _unusable_run(workflow, env)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", folder], check=True)
    line = next((l for l in output.splitlines() if l.startswith("snakebatch: the results folder")), None)
    assert line is not None and line.startswith(f"snakebatch: the results folder results/sq/ cannot be used: {cause}"), \
        output[-3000:]
    if obstacle == "read-only":
        assert line.endswith("Read-only file system (errno 30)"), line
    if obstacle == "full":
        assert line.endswith("No space left on device (errno 28); free space and run the same command again: "
                             "finished mini-batches are kept"), line


def test_a_snakemake_killed_during_gather_in_a_users_folder_resumes_with_the_readmes_steps(tmp_path, workflow):
    import signal

    import yaml

    from test_module import SCORE, SNAKEFILE, snakemake

    project = tmp_path / "my-project"
    for i in range(7):
        write(project / "data" / f"x{i}.txt", f"{i}\n")
    write(project / "src" / "score.py", SCORE)
    write(project / "models" / "my_model" / "weight.txt", "10\n")
    config = {"run_name": "my-run", "input": {"path": "data", "pattern": "*.txt"}, "entry_script": "score.py",
              "source_directory": "src", "models": {"my_model": "models/my_model"}, "mini_batch_size": 2,
              "append_row_file_name": "predictions.txt"}
    write(project / "config" / "config.yaml", yaml.safe_dump(config))
    (project / "Snakefile").write_text(SNAKEFILE.format(snakefile=workflow.path("Snakefile")))
    assert snakemake(str(project)).returncode == 0
    merged = (project / "results" / "my-run" / "predictions.txt").read_text()

    config["error_threshold"] = 5   # gather alone runs again
    write(project / "config" / "config.yaml", yaml.safe_dump(config))
    gather_log = project / "results" / "my-run" / "logs" / "gather.log"
    os.unlink(gather_log)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not gather_log.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)   # snakemake alone: its gather job goes on, orphaned
    proc.wait()
    assert gather_log.exists()
    success = project / "results" / "my-run" / "_SUCCESS"
    while not success.exists() and time.monotonic() < deadline:   # the orphaned gather job ends
        time.sleep(0.05)
    time.sleep(0.5)

    assert snakemake(str(project), "--unlock").returncode == 0   # the README's steps, word for word
    again = snakemake(str(project))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "IncompleteFilesException" not in again.stdout + again.stderr
    assert (project / "results" / "my-run" / "predictions.txt").read_text() == merged
    assert (project / "results" / "my-run" / "_SUCCESS").exists()
