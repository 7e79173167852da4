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


def test_a_flaky_run_succeeds_within_run_max_try_without_duplicate_rows(tmp_path, dataset, init_log):
    files = []
    for i in range(60):
        files.append(str(write(dataset / f"g{i:02d}.txt", f"{i}\n")))
    script = write(tmp_path / "flaky.py", INIT + """
    import random
    chance = random.Random(20261129)   # seeded: the same sequence of failures every run
    def run(mini_batch):
        if chance.random() < 0.3:
            raise ConnectionError("flaky backend")
        return [os.path.basename(p) for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=5), files, size=2)
    assert lines(results) == names(files)
    assert sum(r.failed for r in results) == 0
    tries = [r.tries for r in results]
    assert sum(tries) > len(results)            # some mini-batches did fail first
    assert sum(tries) - len(results) == (tmp_path / "run" / "logs" / "user" / "error" / "shard-00000.txt").read_text().count(
        ": ConnectionError: flaky backend\n")
    assert init_count(init_log) == 1            # a raise does not restart the worker


@pytest.mark.parametrize("poison", [0, 3, 6], ids=["first", "middle", "last"])
def test_one_poison_item_fails_alone_and_the_rest_keep_their_results(tmp_path, files, poison):
    script = write(tmp_path / "poison.py", f"""
    import os
    def init():
        pass
    def run(mini_batch):
        for p in mini_batch:
            if p.endswith("f{poison:02d}.txt"):
                raise ValueError("poison " + os.path.basename(p))
        return [os.path.basename(p) + "=" + open(p).read().strip() for p in mini_batch]
""")
    [result] = run_files(tmp_path, runner_spec(script, run_max_try=2), files[:7], size=7)
    assert list(result.lines) == [f"f{i:02d}.txt={i}" for i in range(7) if i != poison]
    assert (result.item_count, result.succeeded, result.failed) == (7, 6, 1)
    [failure] = result.failures
    assert (failure.item, failure.exception, failure.message, failure.tries) == (
        files[poison], "ValueError", f"poison f{poison:02d}.txt", 2)


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


def test_too_few_results_count_the_deficit_and_too_many_are_kept_with_a_warning(tmp_path, files):
    script = write(tmp_path / "count.py", """
    import os
    def init():
        pass
    def run(mini_batch):
        names = [os.path.basename(p) for p in mini_batch]
        if names[0] == "f00.txt":
            return names[:1]                        # 3 items, 1 result
        return tuple(names + ["extra"])             # 3 items, 4 results
""")
    short, long = run_files(tmp_path, runner_spec(script, run_max_try=1), files[:6], size=3)
    assert (short.succeeded, short.failed, list(short.lines)) == (1, 2, ["f00.txt"])
    assert [f.item for f in short.failures] == [None, None]
    assert short.failures[0].error == "ResultCountError: run() returned 1 result(s) for 3 item(s); 2 item(s) counted as failed"
    assert (long.succeeded, long.failed, list(long.lines)) == (3, 0, ["f03.txt", "f04.txt", "f05.txt", "extra"])
    node_log = (tmp_path / "run" / "logs" / "sys" / "node" / "shard-00000.log").read_text()
    assert "WARNING mini-batch 1: run() returned 4 results for 3 items; all kept" in node_log


def test_an_init_that_fails_once_is_retried_and_the_shard_goes_on(tmp_path, files, init_log):
    script = write(tmp_path / "once.py", """
    import os
    def init():
        with open(os.environ["INIT_LOG"], "a") as f:
            f.write("init\\n")
        if open(os.environ["INIT_LOG"]).read().count("init") == 1:
            raise OSError("model server not up yet")
    def run(mini_batch):
        return [os.path.basename(p) for p in mini_batch]
""")
    results = run_files(tmp_path, runner_spec(script), files[:2], size=1)
    assert lines(results) == ["f00.txt", "f01.txt"]
    assert init_count(init_log) == 2
    errors = (tmp_path / "run" / "logs" / "user" / "error" / "shard-00000.txt").read_text()
    assert errors.startswith(f"--- worker start 1/3 failed: init() of entry_script {str(script)!r} failed: "
                             "OSError: model server not up yet\n")


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


def test_a_script_bug_failing_every_item_is_not_bisected_item_by_item(tmp_path, dataset):
    items = [write(dataset / f"g{i:03d}.txt", f"{i}\n") for i in range(64)]
    calls = tmp_path / "calls.log"
    script = write(tmp_path / "bug.py", f"""
    def init():
        pass
    def run(mini_batch):
        with open({str(calls)!r}, "a") as f:
            f.write("call\\n")
        raise KeyError("missing")
""")
    [result] = run_files(tmp_path, runner_spec(script, run_max_try=3), items, size=64)
    assert (result.item_count, result.failed) == (64, 64)
    assert [f.item for f in result.failures] == items
    assert all(f.error.startswith("KeyError: 'missing'") for f in result.failures)
    assert result.failures[-1].error == ("KeyError: 'missing' (raised for these 32 items together; not split "
                                         "further: the first 8 items of mini-batch 0 tried alone all failed and "
                                         "nothing in it has succeeded)")
    # 3 tries of the whole, 1 per half on the way down, 3 per item for the first 8 alone, then one
    # try per remaining part: far from 3 x (2 x 64 - 1) = 381
    assert calls.read_text().count("call") == result.tries < 60


def test_after_eight_bad_items_in_a_row_the_good_rest_still_runs(tmp_path, dataset):
    items = [write(dataset / f"h{i:03d}.txt", f"{i}\n") for i in range(40)]
    script = write(tmp_path / "first_bad.py", """
    import os
    def init():
        pass
    def run(mini_batch):
        for path in mini_batch:
            if int(os.path.basename(path)[1:4]) < 8:
                raise ValueError("corrupt " + os.path.basename(path))
        return [os.path.basename(p) for p in mini_batch]
""")
    [result] = run_files(tmp_path, runner_spec(script, run_max_try=3), items, size=40)
    assert list(result.lines) == [f"h{i:03d}.txt" for i in range(8, 40)]
    assert [(os.path.basename(f.item), f.error) for f in result.failures] == [
        (f"h{i:03d}.txt", f"ValueError: corrupt h{i:03d}.txt") for i in range(8)]


def test_a_shard_whose_last_mini_batch_breaks_the_threshold_did_not_stop_early(tmp_path, files, monkeypatch):
    from snakebatch.monitor import progress

    monkeypatch.setenv(progress.INVOCATION_ENV, "inv-last")
    script = write(tmp_path / "last.py", """
    import os
    def init():
        pass
    def run(mini_batch):
        if os.path.basename(mini_batch[0]) == "f02.txt":
            raise ValueError("bad last")
        return mini_batch
""")
    results = run_files(tmp_path, runner_spec(script, run_max_try=1, error_threshold=0), files[:3], size=1)
    assert [r.failed for r in results] == [0, 0, 1]
    assert run_files.stopped is None
