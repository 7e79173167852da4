"""Worker supervision (issue 3): hangs in Python and in native code, worker deaths, flaky and
poisoned mini-batches, the return contract, init() failures and shutdown(). Real worker processes,
tiny entry scripts, exact outputs."""

import os
import time

import pytest

from helpers import init_count, lines, run_files, runner_spec, write

INIT = """
    import os
    def init():
        with open(os.environ["INIT_LOG"], "a") as f:
            f.write("init\\n")
"""


def names(paths):
    return [os.path.basename(p) for p in paths]


@pytest.mark.parametrize("hang", [
    "time.sleep(120)",                                                # Python
    "ctypes.CDLL(None).sleep(120)",                                   # native code, signals not seen by Python
    "r, w = os.pipe(); signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT]); os.read(r, 1)",
], ids=["python-sleep", "ctypes-sleep", "blocked-os-read"])
def test_a_hang_is_killed_at_the_timeout_the_worker_restarts_and_init_runs_again(tmp_path, files, init_log, hang):
    script = write(tmp_path / "hang.py", INIT + f"""
    import ctypes, signal, time
    def run(mini_batch):
        if os.path.basename(mini_batch[0]) == "f01.txt":
            {hang}
        return [os.path.basename(p) for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_invocation_timeout=1.0, run_max_try=2), files[:3], size=1)
    assert lines(results) == ["f00.txt", "f02.txt"]
    [failure] = results[1].failures
    assert (failure.item, failure.tries, failure.exception) == (files[1], 2, "MiniBatchTimeout")
    assert failure.message == ("run() did not return within run_invocation_timeout=1 s; "
                               "the worker was killed and restarted")
    assert failure.traceback.startswith("Stack of the worker when it was killed:\n")
    hang_line = open(script).read().splitlines().index("        " + hang) + 1
    assert f'File "{script}", line {hang_line} in run' in failure.traceback
    assert init_count(init_log) == 3      # the first worker, and one after each of the two kills
    assert [r.tries for r in results] == [1, 2, 1]


@pytest.mark.parametrize("death,cause", [
    ("os._exit(1)", "exit code 1"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "signal SIGKILL: killed: out of memory (the kernel's OOM killer) or an external kill"),
    ("ctypes.string_at(0)", "signal SIGSEGV: segmentation fault, usually in native code"),
], ids=["os-exit", "sigkill", "segfault"])
def test_a_worker_dying_mid_batch_is_restarted_and_the_try_counted(tmp_path, files, init_log, death, cause):
    script = write(tmp_path / "die.py", INIT + f"""
    import ctypes, faulthandler, signal
    faulthandler.disable()   # no crash dump on the worker's stderr log, only our record
    def run(mini_batch):
        if os.path.basename(mini_batch[1]) == "f04.txt" and not os.path.exists(os.environ["INIT_LOG"] + ".died"):
            open(os.environ["INIT_LOG"] + ".died", "w").close()
            {death}
        return [os.path.basename(p) for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=3), files[:9], size=3)
    assert lines(results) == names(files[:9])          # each item exactly once, in order
    assert [r.tries for r in results] == [1, 2, 1]
    assert [r.failed for r in results] == [0, 0, 0]
    assert init_count(init_log) == 2
    errors = (tmp_path / "run" / "logs" / "user" / "error" / "shard-00000.txt").read_text()
    assert f"try 1/3: WorkerDied: the worker process exited during run() ({cause})\n" in errors


def test_a_worker_that_dies_every_try_isolates_the_item_and_reports_the_signal(tmp_path, files, init_log):
    script = write(tmp_path / "die.py", INIT + """
    import signal
    def run(mini_batch):
        if any(p.endswith("f02.txt") for p in mini_batch):
            os.kill(os.getpid(), signal.SIGKILL)
        return [os.path.basename(p) for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=1), files[:4], size=4)
    assert lines(results) == ["f00.txt", "f01.txt", "f03.txt"]
    [failure] = results[0].failures
    assert failure.item == files[2]
    assert failure.error.startswith("WorkerDied: the worker process exited during run() (signal SIGKILL")


@pytest.mark.parametrize("returned,kind", [("None", "NoneType"), ("{'a': 1}", "dict"), ("'abc'", "str"), ("42", "int")])
def test_a_result_of_the_wrong_type_is_a_failed_try_naming_the_type(tmp_path, files, returned, kind):
    script = write(tmp_path / "wrong.py", f"""
    def init():
        pass
    def run(mini_batch):
        return {returned}
""")
    [result] = run_files(tmp_path, runner_spec(script, run_max_try=2), files[:1], size=1)
    [failure] = result.failures
    assert failure.error == (f"ResultTypeError: run() returned {kind}; it must return a list, tuple or pandas "
                             "DataFrame with one element per successful item of the mini-batch")
    assert failure.tries == 2
    assert result.lines == ()


def test_a_script_that_cannot_be_imported_fails_at_once(tmp_path, files, init_log):
    script = write(tmp_path / "syntax.py", "def init(:\n    pass\n")
    assert run_files(tmp_path, runner_spec(script), files[:1], size=1) == []
    assert run_files.failure.startswith(f"importing entry_script {str(script)!r} failed: SyntaxError: ")
    errors = (tmp_path / "run" / "logs" / "user" / "error" / "shard-00000.txt").read_text()
    assert errors.count("--- worker start") == 1


def test_shutdown_is_called_once_when_the_worker_finishes(tmp_path, files, init_log):
    script = write(tmp_path / "shut.py", INIT + """
    def run(mini_batch):
        return [os.path.basename(p) for p in mini_batch]
    def shutdown():
        with open(os.environ["INIT_LOG"], "a") as f:
            f.write("shutdown\\n")
""")
    run_files(tmp_path, runner_spec(script), files[:4], size=1)
    assert open(init_log).read() == "init\nshutdown\n"


def test_summary_only_counts_returned_lengths_and_keeps_no_lines(tmp_path, files):
    script = write(tmp_path / "own_outputs.py", """
    import os
    from snakebatch import EntryScript
    def init():
        pass
    def run(mini_batch):
        out = EntryScript().output_dir
        for p in mini_batch:
            with open(os.path.join(out, os.path.basename(p) + ".out"), "w") as f:
                f.write("done")
        return [object() for _ in mini_batch[:-1]] if mini_batch[0].endswith("f00.txt") else list(mini_batch)
""")
    results = run_files(tmp_path, runner_spec(script, output_action="summary_only", run_max_try=1), files[:4], size=2)
    assert [(r.succeeded, r.failed, r.lines) for r in results] == [(1, 1, ()), (2, 0, ())]
    assert sorted(os.listdir(tmp_path / "run" / "outputs")) == [f"f0{i}.txt.out" for i in range(4)]


def test_a_hanging_init_is_killed_at_init_timeout_and_counts_as_an_init_failure(tmp_path, files, init_log):
    script = write(tmp_path / "slow_init.py", INIT.replace('f.write("init\\n")', 'f.write("init\\n")\n        import time; time.sleep(60)') + """
    def run(mini_batch):
        return mini_batch
""")
    start = time.monotonic()
    run_files(tmp_path, runner_spec(script, run_max_try=2, init_timeout=1.0), files[:1], size=1)
    assert time.monotonic() - start < 20
    message = run_files.failure
    assert message.startswith(f"init() of entry_script {str(script)!r} failed 2 times in a row: InitTimeout: importing "
                              "the script and init() did not finish within init_timeout=1 s; the worker was killed\n")
    assert "Stack of the worker when it was killed:" in message and "in init" in message
    assert init_count(init_log) == 2


