"""The shard runner with real worker processes and tiny entry scripts."""

import json
import os
import re
import time

import pytest

from helpers import init_count, lines, partition_spec, run_files, runner_spec, write
from snakebatch.errors import ConfigError
from snakebatch.partition.job import manifest_path
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.job import run_shard

ECHO = """
    import os
    calls = []

    def init():
        with open(os.environ["INIT_LOG"], "a") as f:
            f.write("init\\n")

    def run(mini_batch):
        return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def test_every_item_yields_one_line_in_order(tmp_path, files, init_log):
    results = run_files(tmp_path, runner_spec(write(tmp_path / "echo.py", ECHO)), files)
    assert lines(results) == [f"f{i:02d}.txt: {i}" for i in range(10)]
    assert [(r.index, r.item_count, r.succeeded, r.tries) for r in results] == [(0, 3, 3, 1), (1, 3, 3, 1), (2, 3, 3, 1), (3, 1, 1, 1)]
    assert init_count(init_log) == 1


def test_a_changed_entry_script_recomputes(tmp_path, files, init_log):
    script = write(tmp_path / "echo.py", ECHO)
    run_files(tmp_path, runner_spec(script), files)
    write(script, ECHO.replace('": "', '" = "'))
    again = run_files(tmp_path, runner_spec(script), files)
    assert [r.reused for r in again] == [False] * 4
    assert lines(again)[0] == "f00.txt = 0"


def test_a_hung_run_is_killed_at_the_timeout_and_init_runs_again(tmp_path, files, init_log):
    script = write(tmp_path / "hang.py", """
        import os, time
        def init():
            with open(os.environ["INIT_LOG"], "a") as f:
                f.write("init\\n")
        def run(mini_batch):
            if os.path.basename(mini_batch[0]) == "f00.txt":
                time.sleep(60)
            return [os.path.basename(p) for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script, run_invocation_timeout=1.0, run_max_try=1), files[:2], size=1)
    assert lines(results) == ["f01.txt"]
    [failure] = results[0].failures
    assert failure.error == ("MiniBatchTimeout: run() did not return within run_invocation_timeout=1 s; "
                             "the worker was killed and restarted")
    assert failure.traceback.startswith("Stack of the worker when it was killed:\n")
    assert f'File "{script}", line 8 in run' in failure.traceback
    assert init_count(init_log) == 2


def test_a_dying_worker_counts_as_a_try_and_is_replaced(tmp_path, files, init_log):
    script = write(tmp_path / "die.py", """
        import os
        def init():
            with open(os.environ["INIT_LOG"], "a") as f:
                f.write("init\\n")
        def run(mini_batch):
            if os.path.basename(mini_batch[0]) == "f01.txt":
                os._exit(3)
            return [os.path.basename(p) for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script, run_max_try=2), files[:3], size=1)
    assert lines(results) == ["f00.txt", "f02.txt"]
    assert results[1].failures[0].error == "WorkerDied: the worker process exited during run() (exit code 3)"
    assert results[1].failures[0].shard == 0
    assert results[1].tries == 2
    assert init_count(init_log) == 3


def test_wrong_return_type_is_a_failed_try_with_a_clear_message(tmp_path, files):
    script = write(tmp_path / "none.py", """
        def init():
            pass
        def run(mini_batch):
            return None
    """)
    [result] = run_files(tmp_path, runner_spec(script, run_max_try=1), files[:1], size=1)
    assert result.failures[0].error.startswith("ResultTypeError: run() returned NoneType; it must return a list")


def test_init_failure_stops_the_shard_with_the_traceback(tmp_path, files):
    script = write(tmp_path / "broken.py", """
        def init():
            raise OSError("model file missing")
        def run(mini_batch):
            return mini_batch
    """)
    assert run_files(tmp_path, runner_spec(script), files[:2]) == []
    message = run_files.failure
    assert run_files.stopped == ("the entry script failed to start: init() of entry_script "
                                 f"{script!r} failed 3 times in a row: OSError: model file missing")
    assert message.startswith(f"init() of entry_script {script!r} failed 3 times in a row: OSError: model file missing\n")
    assert 'raise OSError("model file missing")' in message
    error_log = tmp_path / "run" / "logs" / "user" / "error" / "shard-00000.txt"
    assert message.endswith(f"Worker error log: {error_log}")
    assert error_log.read_text().count("--- worker start ") == 3
    assert os.path.exists(tmp_path / "shards" / "shard-00000.unfinished")   # the next run runs it again


def test_script_without_run_is_rejected(tmp_path, files):
    script = write(tmp_path / "norun.py", "def init():\n    pass\n")
    run_files(tmp_path, runner_spec(script), files[:1])
    assert run_files.failure.startswith(f"importing entry_script {script!r} failed: AttributeError: entry_script "
                                        f"{script!r} defines no run() function\n")


def test_a_run_only_script_runs_without_init_or_shutdown(tmp_path, files):
    # ParallelRunStep v1: a script "must contain a run() function and optionally contains an init()"
    script = write(tmp_path / "runonly.py", """
        import os
        def run(mini_batch):
            return [os.path.basename(p) for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script), files[:4])
    assert lines(results) == ["f00.txt", "f01.txt", "f02.txt", "f03.txt"]
    assert [(r.succeeded, r.tries) for r in results] == [(3, 1), (1, 1)]


def test_an_init_that_is_not_a_function_is_rejected(tmp_path, files):
    script = write(tmp_path / "badinit.py", "init = 3\ndef run(mini_batch):\n    return mini_batch\n")
    run_files(tmp_path, runner_spec(script), files[:1])
    assert run_files.failure.startswith(f"importing entry_script {script!r} failed: AttributeError: entry_script "
                                        f"{script!r}: init is not a function\n")


def test_missing_model_path_names_the_key(tmp_path, files):
    script = write(tmp_path / "echo.py", ECHO)
    with pytest.raises(ConfigError) as info:
        run_files(tmp_path, runner_spec(script, models={"m": str(tmp_path / "nomodel")}), files[:1])
    assert str(info.value) == f"config key 'models.m': path {str(tmp_path / 'nomodel')!r} does not exist"


def test_worker_sees_arguments_environment_models_side_inputs_and_context(tmp_path, files):
    model_dir = tmp_path / "model"
    write(model_dir / "weights.txt", "w")
    lookup = write(tmp_path / "lookup.csv", "a,b\n")
    script = write(tmp_path / "src" / "inspect_me.py", """
        import argparse, os, sys
        from azureml_user.parallel_run import EntryScript
        from azureml.core import Model
        import helper

        def init():
            global args
            parser = argparse.ArgumentParser()
            parser.add_argument("--scale")
            args, _ = parser.parse_known_args()
            print("init on stdout")

        def run(mini_batch, context):
            es = EntryScript()
            es.logger.info("logged from run")
            return [repr((args.scale, os.environ["GREETING"], helper.NAME, os.path.basename(Model.get_model_path("m")),
                          os.path.basename(es.side_inputs["lookup"]), es.agent_name,
                          os.path.relpath(es.output_dir, es.working_dir) == os.path.relpath(os.environ["AZUREML_BI_OUTPUT_PATH"]),
                          context.minibatch_index, context.global_row_index_lower_bound, sys.argv[1:]))]
    """)
    write(tmp_path / "src" / "helper.py", "NAME = 'helper'\n")
    spec = runner_spec(script, arguments=("--scale", "2", "--extra"), environment_variables={"GREETING": "hi"},
                     models={"m": str(model_dir)}, side_inputs={"lookup": lookup})
    results = run_files(tmp_path, spec, files[:2], size=1)
    assert lines(results) == [
        repr(("2", "hi", "helper", "model", "lookup.csv", "process000", True, 0, 0, ["--scale", "2", "--extra"])),
        repr(("2", "hi", "helper", "model", "lookup.csv", "process000", True, 1, 1, ["--scale", "2", "--extra"])),
    ]
    logs = tmp_path / "run" / "logs"
    assert "init on stdout" in open(logs / "user" / "stdout" / "shard-00000.stdout.txt").read()
    assert "logged from run" in open(logs / "user" / "stderr" / "shard-00000.stderr.txt").read()
    node_log = open(logs / "sys" / "node" / "shard-00000.log").read()
    assert re.search(r"INFO mini-batch 1: 1 item\(s\), 1 succeeded, 0 failed, 1 try, wall \d+\.\d{3} s, cpu \d+\.\d{3} s ", node_log)


def test_timeout_also_kills_what_run_spawned(tmp_path, files):
    marker = tmp_path / "grandchild.pid"
    script = write(tmp_path / "spawner.py", f"""
        import subprocess, time
        def init():
            pass
        def run(mini_batch):
            child = subprocess.Popen(["sleep", "300"])
            open({str(marker)!r}, "w").write(str(child.pid))
            time.sleep(300)
    """)
    [result] = run_files(tmp_path, runner_spec(script, run_invocation_timeout=1.0, run_max_try=1), files[:1], size=1)
    assert result.failures[0].error.startswith("MiniBatchTimeout")
    pid = int(marker.read_text())
    deadline = time.time() + 5
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_changed_helper_module_recomputes(tmp_path, files, init_log):
    write(tmp_path / "src" / "helper.py", "SUFFIX = '!'\n")
    script = write(tmp_path / "src" / "uses_helper.py", """
        import os
        import helper
        def init():
            pass
        def run(mini_batch):
            return [os.path.basename(p) + helper.SUFFIX for p in mini_batch]
    """)
    spec = runner_spec(script)
    assert lines(run_files(tmp_path, spec, files[:2], size=1)) == ["f00.txt!", "f01.txt!"]
    modules = json.loads((tmp_path / "run" / "entry_script_modules.json").read_text())
    assert modules == {"entry_script": script, "modules": [str(tmp_path / "src" / "helper.py")]}  # outside the cwd: absolute
    assert [r.reused for r in run_files(tmp_path, spec, files[:2], size=1)] == [True, True]
    write(tmp_path / "src" / "helper.py", "SUFFIX = '?'\n")
    again = run_files(tmp_path, spec, files[:2], size=1)
    assert [r.reused for r in again] == [False, False]
    assert lines(again) == ["f00.txt?", "f01.txt?"]


def test_helpers_imported_inside_run_are_tracked_too(tmp_path, files, init_log):
    write(tmp_path / "src" / "eager.py", "TAG = 'e1'\n")
    write(tmp_path / "src" / "lazy.py", "TAG = 'l1'\n")
    script = write(tmp_path / "src" / "uses_lazy.py", """
        import os
        import eager
        def init():
            pass
        def run(mini_batch):
            import lazy
            return [os.path.basename(p) + eager.TAG + lazy.TAG for p in mini_batch]
    """)
    spec = runner_spec(script)
    assert lines(run_files(tmp_path, spec, files[:3], size=1)) == ["f00.txte1l1", "f01.txte1l1", "f02.txte1l1"]
    assert [r.reused for r in run_files(tmp_path, spec, files[:3], size=1)] == [True, True, True]
    write(tmp_path / "src" / "lazy.py", "TAG = 'l2'\n")
    again = run_files(tmp_path, spec, files[:3], size=1)
    assert lines(again) == ["f00.txte1l2", "f01.txte1l2", "f02.txte1l2"]
    assert [r.reused for r in again] == [False, False, False]


def test_results_that_used_the_mini_batch_context_are_reused_only_in_place(tmp_path, files):
    script = write(tmp_path / "where.py", """
        import os
        def init():
            pass
        def run(mini_batch, context):
            return [f"{os.path.basename(p)} #{context.global_row_index_lower_bound + i}" for i, p in enumerate(mini_batch)]
    """)
    spec = runner_spec(script)
    run_files(tmp_path, spec, files[2:4], size=1)
    assert [r.reused for r in run_files(tmp_path, spec, files[2:4], size=1)] == [True, True]
    shifted = run_files(tmp_path, spec, files[:4], size=1)
    assert lines(shifted) == ["f00.txt #0", "f01.txt #1", "f02.txt #2", "f03.txt #3"]
    assert [r.reused for r in shifted] == [False] * 4


def test_the_timeout_stack_shows_the_thread_that_ran_run_first(tmp_path, files):
    script = write(tmp_path / "threads.py", """
        import threading, time
        def idle():
            while True:
                time.sleep(0.2)
        def init():
            threading.Thread(target=idle, daemon=True).start()
        def inner():
            time.sleep(100)
        def run(mini_batch):
            inner()
    """)
    [result] = run_files(tmp_path, runner_spec(script, run_invocation_timeout=1.0, run_max_try=1), files[:1], size=1)
    stack = result.failures[0].traceback.splitlines()
    assert stack[0] == "Stack of the worker when it was killed:"
    assert stack[1].startswith(("Thread 0x", "Current thread 0x"))
    assert stack[2] == f'  File "{script}", line 9 in inner'


def test_a_long_run_call_is_interrupted_when_another_shard_breaches_meanwhile(tmp_path, files, monkeypatch):
    from snakebatch.monitor import progress
    from snakebatch.infer.job import ShardRunner

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-3")
    monkeypatch.setattr(ShardRunner, "CHECK_EVERY_S", 0.2)
    run_dir = str(tmp_path / "run")
    script = write(tmp_path / "slow.py", f"""
        import os, time
        from snakebatch.monitor import progress
        def init():
            pass
        def run(mini_batch):
            if os.path.basename(mini_batch[0]) == "f01.txt":   # meanwhile shard 5 fails 3 items
                progress.write_progress({run_dir!r}, progress.ShardProgress("inv-3", 5, 1, 4, 3, 1, "z.png: KeyError: 'z'"))
                time.sleep(60)
            return [os.path.basename(p) for p in mini_batch]
    """)
    start = time.monotonic()
    results = run_files(tmp_path, runner_spec(script, run_max_try=1, error_threshold=2, run_invocation_timeout=50.0),
                  files[:4], size=1)
    assert time.monotonic() - start < 15          # not the 60 s sleep, nor the 50 s timeout
    assert [r.index for r in results] == [0]      # the interrupted mini-batch is not a result
    assert run_files.stopped.startswith("stopped early: 3 failed item(s) > error_threshold 2 in this run so far")
    assert "shard 5: z.png: KeyError: 'z'" in run_files.stopped


def test_entry_script_is_a_singleton_and_the_azureml_imports_resolve(tmp_path, files):
    script = write(tmp_path / "prs_style.py", """
        import os
        from azureml_user.parallel_run import EntryScript
        from azureml.core.model import Model
        from azureml.core import Model as SameModel

        def init():
            global first
            first = EntryScript()

        def run(mini_batch):
            es = EntryScript()
            return [repr((es is first, Model is SameModel, es.agent_name, os.path.basename(Model.get_model_path("m")),
                          os.environ["AZUREML_MODEL_DIR"] == Model.get_model_path("m"),
                          os.environ["AZUREML_BI_OUTPUT_PATH"] == es.output_dir, os.path.isdir(es.output_dir),
                          es.working_dir == os.getcwd()))]
    """)
    write(tmp_path / "model" / "w.bin", "w")
    [result] = run_files(tmp_path, runner_spec(script, models={"m": str(tmp_path / "model")}), files[:1], size=1)
    assert list(result.lines) == [repr((True, True, "process000", "model", True, True, True, True))]


PREFETCH = """
    import os, time

    def init():
        pass

    def run(mini_batch):
        if mini_batch["part"].iloc[0] == "a":   # while this works, the next mini-batch is read
            time.sleep(1.5)
            os.remove(os.environ["NEXT_FILE"])  # too late to matter: it was prefetched
        return [f"{p}:{v}" for p, v in zip(mini_batch["part"], mini_batch["v"])]
"""


def test_the_next_mini_batch_is_read_while_run_works_on_this_one(tmp_path, monkeypatch):
    from snakebatch.partition.job import build_manifests
    from snakebatch.kinds import get_kind

    write(tmp_path / "data" / "a.csv", "part,v\na,1\na,2\n")
    second = write(tmp_path / "data" / "b.csv", "part,v\nb,3\n")
    monkeypatch.setenv("NEXT_FILE", second)
    pspec = partition_spec(tmp_path / "data", 1 << 20, input_type="tabular")
    [manifest] = build_manifests(pspec, list(get_kind("tabular").list(pspec)))
    path = manifest_path(str(tmp_path / "partition"), 0)
    manifest.write(path)
    output = str(tmp_path / "shards" / "shard-00000.jsonl")
    spec = runner_spec(write(tmp_path / "prefetch.py", PREFETCH), input_type="tabular")
    results, stopped = run_shard(spec, path, output, str(tmp_path / "run"))
    with open(output) as handle:
        records = [MiniBatchResult.from_json(line) for line in handle]
    assert stopped is None
    assert [(r.index, r.succeeded, r.failed, r.lines) for r in records] == [
        (0, 2, 0, ("a:1", "a:2")), (1, 1, 0, ("b:3",))]
    assert not os.path.exists(second)


def test_a_shard_that_stopped_early_leaves_a_marker_dated_now_never_in_the_future(tmp_path):
    # the marker reruns the shard as a changed input set (issue 21 point 7), not by a date a day ahead
    import time

    from snakebatch.infer.job import mark_unfinished

    result = tmp_path / "results" / "r" / "shards" / "shard-00001.jsonl"
    result.parent.mkdir(parents=True)
    result.write_text("{}\n")
    marker = mark_unfinished(str(result))
    assert marker == str(tmp_path / "results" / "r" / "shards" / "shard-00001.unfinished")
    assert os.stat(marker).st_mtime <= time.time()
    os.utime(result)   # Snakemake touches a job's outputs when it ends: no input newer than them
    assert os.stat(marker).st_mtime <= os.stat(result).st_mtime


def test_a_shard_run_again_for_its_marker_that_stops_early_again_takes_the_other_name(tmp_path):
    # a rerun for the marker that stops again must change the job's input set again
    from snakebatch.infer.job import mark_unfinished, remove_unfinished_markers

    result = tmp_path / "results" / "r" / "shards" / "shard-00001.jsonl"
    result.parent.mkdir(parents=True)
    first = mark_unfinished(str(result))
    assert remove_unfinished_markers(str(result)) == first and not os.path.exists(first)
    again = mark_unfinished(str(result), instead_of=first)
    assert again == first + "-again"
    assert remove_unfinished_markers(str(result)) == again
    assert mark_unfinished(str(result), instead_of=again) == first
    assert remove_unfinished_markers(str(result)) == first
    assert remove_unfinished_markers(str(result)) is None


def test_the_first_mini_batchs_wall_time_and_eta_leave_out_init(tmp_path, files):
    script = write(tmp_path / "slowinit.py", """
        import os, time
        def init():
            time.sleep(2)
        def run(mini_batch):
            return [os.path.basename(p) for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script), files[:6])
    assert [r.duration_s < 1.0 for r in results] == [True, True]
    node_log = (tmp_path / "run" / "logs" / "sys" / "node" / "shard-00000.log").read_text()
    assert re.search(r"mini-batch 0: 3 item\(s\), 3 succeeded, 0 failed, 1 try, wall 0\.\d+ s, .*"
                     r"\(1/2 in shard, 3/6 items, \d+\.\d items/s, ETA 0 s\)", node_log)


def test_mini_batch_context_dataset_names_the_files_of_each_call_also_of_a_bisected_part(tmp_path, files):
    script = write(tmp_path / "dataset.py", """
        import os
        def run(mini_batch, mini_batch_context):
            if any(p.endswith("f04.txt") for p in mini_batch):
                raise ValueError("cannot read f04")
            assert mini_batch_context.dataset.to_path() == list(mini_batch)
            files = "+".join(os.path.basename(p) for p in mini_batch_context.dataset.to_path())
            return [f"{os.path.basename(p)} in {files}" for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script, run_max_try=1), files, size=5)
    assert lines(results) == [
        "f00.txt in f00.txt+f01.txt", "f01.txt in f00.txt+f01.txt", "f02.txt in f02.txt", "f03.txt in f03.txt",
        "f05.txt in f05.txt+f06.txt+f07.txt+f08.txt+f09.txt", "f06.txt in f05.txt+f06.txt+f07.txt+f08.txt+f09.txt",
        "f07.txt in f05.txt+f06.txt+f07.txt+f08.txt+f09.txt", "f08.txt in f05.txt+f06.txt+f07.txt+f08.txt+f09.txt",
        "f09.txt in f05.txt+f06.txt+f07.txt+f08.txt+f09.txt"]


def test_a_stopped_shard_job_whose_cleanup_hangs_ends_within_its_grace():
    """SIGTERM raises SystemExit through the shard loop; whatever its cleanup does, SIGALRM ends
    the process after TERMINATE_GRACE_S, so snakemake, which waits for its jobs, never hangs."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, signal, time\n"
            "from snakebatch.infer import job\n"
            "job.TERMINATE_GRACE_S = 1\n"
            "signal.signal(signal.SIGTERM, job._terminate)\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(5)\n"
            "finally:\n"
            "    time.sleep(60)  # a cleanup that hangs\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == -signal.SIGALRM
    assert "snakebatch runner: stopped by SIGTERM; the next run resumes the unfinished mini-batches" in proc.stderr
