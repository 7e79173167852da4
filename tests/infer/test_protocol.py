"""The runner <-> worker protocol (issue 9): the records, and a real worker driven through every
message type by a ``supervisor.WorkerProcess``, tiny entry scripts and tiny CSV files."""

import dataclasses
import os
import pickle
import time

import pytest

from helpers import write
from snakebatch.infer import protocol
from snakebatch.kinds.tables.reader import TableReadError
from snakebatch.settings.config import PartitionSpec
from snakebatch.infer.entry import MiniBatchContext, WorkerContext
from snakebatch.errors import EntryScriptError, MiniBatchTimeout, WorkerDied
from snakebatch.kinds import get_kind
from snakebatch.infer.supervisor import WorkerProcess
from snakebatch.infer.workers import InitFailed, Outcome, ScriptImportFailed
from snakebatch.infer.worker import WorkerSetup

SCRIPT = """
    import os, time
    import helper

    class PoisonError(Exception):
        pass

    def init():
        pass

    def run(mini_batch, context):
        if isinstance(mini_batch, list):
            if mini_batch and mini_batch[0] == "poison":
                raise PoisonError("poisoned item " + mini_batch[0])
            if mini_batch and mini_batch[0] == "bad":
                raise ValueError("bad item " + mini_batch[1])
            if mini_batch and mini_batch[0] == "exit":
                os._exit(3)
            if mini_batch and mini_batch[0] == "hang":
                time.sleep(60)
            return [helper.shout(item) for item in mini_batch]
        time.sleep(float(os.environ.get("RUN_SLEEP_" + str(context.minibatch_index), "0")))
        return [f"{context.minibatch_index}:{row.Index}={row.word}" for row in mini_batch.itertuples()]

    def shutdown():
        with open(os.path.join(os.path.dirname(__file__), "shutdown.log"), "a") as f:
            f.write("shutdown\\n")
"""


def make_worker(tmp_path, script=SCRIPT, **environment):
    source = tmp_path / "src"
    write(source / "helper.py", "def shout(text):\n    return text.upper()\n")
    entry_script = write(source / "proto.py", script)
    logs = tmp_path / "logs"
    os.makedirs(logs, exist_ok=True)
    context = WorkerContext(agent_name="process000", output_dir=str(tmp_path), working_dir=str(tmp_path),
                            log_dir=str(logs))
    setup = WorkerSetup(entry_script=entry_script, source_directory=str(source), arguments=(),
                        environment_variables=dict(environment), append_row_format="txt",
                        output_action="append_row", stdout_path=str(logs / "stdout.txt"),
                        stderr_path=str(logs / "stderr.txt"), stack_path=str(logs / "stack.txt"), context=context)
    return WorkerProcess(setup)


@pytest.fixture
def worker(tmp_path):
    process = make_worker(tmp_path, RUN_SLEEP_0="2")
    process.start(60)
    yield process
    process.kill()


def table_chunk(path, text):
    """The one mini-batch (a tabular ``kinds.MiniBatch``) of a small CSV file, as partition cuts it."""
    write(path, text)
    spec = PartitionSpec(run_name="r", paths=(str(path),), pattern=None, mini_batch_size=1 << 20, shard_count=1,
                         input_type="tabular")
    [descriptor] = get_kind("tabular").mini_batches(get_kind("tabular").list(spec), spec)
    return descriptor


def raw_messages(worker, until, timeout=20.0):
    """The records the worker sends, as they come, up to and including the first for which
    ``until(message)`` is true."""
    messages, deadline = [], time.monotonic() + timeout
    while True:
        message = worker._receive(max(0.0, deadline - time.monotonic()))
        assert message is not None, "the worker died"
        messages.append(message)
        if until(message):
            return messages


def shape(message):
    kind = getattr(message, "kind", None)
    return (type(message).__name__, message.request_id) + ((kind,) if kind else ())


CONTEXT = MiniBatchContext(minibatch_index=7, global_row_index_lower_bound=70)


# ------------------------------------------------------------------------------------ the records
def test_every_record_survives_pickling_unchanged():
    error = protocol.RemoteError("ValueError", "builtins", "bad", "Traceback ...\nValueError: bad\n")
    records = [
        protocol.Load(1, "key-1", {"path": "/d/a.csv", "start": 0}),
        protocol.Load(6, "key-2", ["opaque", 3], kind="mini_batch", replace=True),
        protocol.Run(2, ("/d/a.txt", "/d/b.txt"), CONTEXT),
        protocol.Run(3, (0, 1, 2), MiniBatchContext(1, 10, {"k": "v"}), loaded="key-1"),
        protocol.Shutdown(4),
        protocol.Ready(("/src/helper.py",), True, 139),
        protocol.Result(2, ("A", "B"), 2, 0.25, None, None, ("/src/helper.py",)),
        protocol.Result(5, (), 3, 0.0, "a,b", b"ARROW1"),
        protocol.Failure(3, error, "run", 0.5, None),
        protocol.Event(2, "started", 1764623000.5),
        protocol.Stopped(4, ("/src/helper.py",)),
    ]
    for record in records:
        copy = pickle.loads(pickle.dumps(record))
        assert copy == record and type(copy) is type(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].key = "other"
    assert (protocol.Load(1, "k", None).kind, protocol.Load(1, "k", None).replace) == ("mini_batch", False)
    assert protocol.Run(1, (), CONTEXT).loaded is None


def test_a_remote_error_keeps_the_exception_type_and_message():
    try:
        raise ValueError("bad item 3")
    except ValueError as exc:
        error = protocol.RemoteError.from_exception(exc)
    assert (error.type_name, error.module, error.message) == ("ValueError", "builtins", "bad item 3")
    assert error.error == "ValueError: bad item 3"
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert error.traceback.endswith("ValueError: bad item 3\n")
    rebuilt = error.to_exception()
    assert type(rebuilt) is ValueError and str(rebuilt) == "bad item 3" and rebuilt.remote is error

    table = protocol.RemoteError.from_exception(TableReadError("a.csv, line 3: bad row"), "")
    assert (table.type_name, table.module, table.traceback) == ("TableReadError", "snakebatch.kinds.tables.reader", "")
    assert type(table.to_exception()) is TableReadError

    # a type this process does not know, or one str() would change (KeyError quotes): a stand-in
    for record in (protocol.RemoteError("PoisonError", "proto", "poisoned"),
                   protocol.RemoteError.from_exception(KeyError("x"))):
        stand_in = record.to_exception()
        assert type(stand_in) is protocol.RemoteException
        assert str(stand_in) == record.error and stand_in.remote is record
    assert protocol.RemoteError.from_exception(KeyError("x")).error == "KeyError: 'x'"


def test_outcome_from_a_result_and_from_a_failure():
    assert Outcome.from_reply(protocol.Result(1, ("a",), 1, 0.5, "h", b"i")) == Outcome(
        ok=True, lines=("a",), length=1, cpu_s=0.5, header="h", ipc=b"i")
    failure = protocol.Failure(2, protocol.RemoteError("OSError", "builtins", "disk full", "tb\n"), "run", 0.25)
    assert Outcome.from_reply(failure) == Outcome(ok=False, cause=failure.error, traceback="tb\n", cpu_s=0.25)
    assert Outcome.from_reply(failure).error == "OSError: disk full"


# ------------------------------------------------------------------------------- a real worker
def test_ready_then_run_answers_a_result_after_a_started_event(worker, tmp_path):
    assert worker.modules == [str(tmp_path / "src" / "helper.py")]
    assert worker.takes_context is True
    assert isinstance(worker.main_thread, int) and worker.main_thread > 0

    before = time.time()
    request_id = worker.send(protocol.Run(worker.new_id(), ("a", "b c"), CONTEXT))
    messages = raw_messages(worker, lambda m: isinstance(m, protocol.Result))
    assert [shape(m) for m in messages] == [("Event", request_id, "started"), ("Result", request_id)]
    event, result = messages
    assert before <= event.time <= time.time()
    assert (result.lines, result.length, result.header, result.ipc, result.modules) == (
        ("A", "B C"), 2, None, None, None)
    assert result.cpu_s >= 0.0

    outcome = worker.call(("x",), CONTEXT, 20)
    assert (outcome.ok, outcome.lines, outcome.length) == (True, ("X",), 1)
    assert worker.events == 1 and before <= worker.last_event_at <= time.time()


def test_a_failure_in_run_keeps_the_exception_type_and_the_worker_goes_on(worker, tmp_path):
    request_id = worker.send(protocol.Run(worker.new_id(), ("bad", "item-9"), CONTEXT))
    [*_, failure] = raw_messages(worker, lambda m: isinstance(m, protocol.Failure))
    assert (failure.request_id, failure.stage) == (request_id, "run")
    assert (failure.error.type_name, failure.error.module, failure.error.message) == ("ValueError", "builtins",
                                                                                      "bad item item-9")
    script = str(tmp_path / "src" / "proto.py")
    assert failure.error.traceback.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line ' in failure.error.traceback and "in run\n" in failure.error.traceback
    assert "worker.py" not in failure.error.traceback          # our own frame is left out
    assert type(failure.error.to_exception()) is ValueError

    outcome = worker.call(("poison",), CONTEXT, 20)
    assert (outcome.ok, outcome.restart, outcome.error) == (False, False, "PoisonError: poisoned item poison")
    assert outcome.traceback.endswith("proto.PoisonError: poisoned item poison\n")
    assert worker.call(("still", "alive"), CONTEXT, 20).lines == ("STILL", "ALIVE")


def test_load_reads_a_table_and_run_gets_its_rows(worker, tmp_path):
    chunk = table_chunk(tmp_path / "data" / "a.csv", "word\nalpha\nbeta\ngamma\n")
    key = "mb-a"
    before = worker.events
    outcome = worker.load(key, chunk.to_dict(), 20)
    assert (outcome.ok, outcome.length, outcome.lines) == (True, 3, ())
    assert worker.loaded == key
    assert worker.events == before + 2                         # started, loaded
    result = worker.call((1, 2), MiniBatchContext(1, 0), 20, loaded=key)
    assert result.lines == ("1:1=beta", "1:2=gamma")
    assert worker.call((0,), MiniBatchContext(1, 0), 20, loaded=key).lines == ("1:0=alpha",)
    # a load the runner waits for (not a prefetch) first lets go of what the worker read before
    other = table_chunk(tmp_path / "data" / "b.csv", "word\nomega\n")
    assert worker.load("mb-b", other.to_dict(), 20).length == 1
    assert worker.call((0,), MiniBatchContext(2, 3), 20, loaded=key).error == (
        "LookupError: mini-batch 'mb-a' is not loaded in this worker (no Load, or it failed)")
    assert worker.call((0,), MiniBatchContext(2, 3), 20, loaded="mb-b").lines == ("2:0=omega",)


def test_a_load_that_cannot_read_fails_with_its_exception_type(worker, tmp_path):
    path = tmp_path / "data" / "a.csv"
    chunk = table_chunk(path, "word\nalpha\n")
    write(path, "word\nalpha\nbeta\n")                        # changed after it was partitioned
    request_id = worker.send(protocol.Load(worker.new_id(), "mb-a", chunk.to_dict()))
    messages = raw_messages(worker, lambda m: isinstance(m, protocol.Failure))
    assert [shape(m) for m in messages] == [("Event", request_id, "started"), ("Failure", request_id)]
    failure = messages[-1]
    assert (failure.stage, failure.error.type_name, failure.error.traceback) == ("load", "TableReadError", "")
    assert failure.error.message == (f"input file {str(path)!r} changed after it was partitioned (size 11 -> 16 "
                                     "bytes); the next run partitions it again")
    outcome = worker.load("mb-b", chunk.to_dict(), 20)
    assert (outcome.ok, outcome.restart) == (False, False)
    assert outcome.error.startswith("TableReadError: input file ")
    assert worker.loaded is None


def test_a_load_sent_while_run_works_is_answered_and_the_next_run_uses_it(worker, tmp_path):
    first = table_chunk(tmp_path / "data" / "a.csv", "word\nalpha\nbeta\n")
    second_path = tmp_path / "data" / "b.csv"
    second = table_chunk(second_path, "word\ngamma\ndelta\nepsilon\n")
    assert worker.load("mb-0", first.to_dict(), 20).length == 2

    # run() of mini-batch 0 sleeps 2 s (RUN_SLEEP_0); mini-batch 1 is loaded meanwhile
    run_id = worker.send(protocol.Run(worker.new_id(), (0, 1), MiniBatchContext(0, 0), loaded="mb-0"))
    started = raw_messages(worker, lambda m: isinstance(m, protocol.Event))
    assert [shape(m) for m in started] == [("Event", run_id, "started")]
    load_id = worker.send_load("mb-1", second.to_dict())
    assert load_id == run_id + 1
    messages = raw_messages(worker, lambda m: isinstance(m, protocol.Result) and m.request_id == run_id)
    assert [shape(m) for m in messages] == [
        ("Event", load_id, "started"), ("Event", load_id, "loaded"), ("Result", load_id), ("Result", run_id)]
    assert messages[2].length == 3
    assert messages[3].lines == ("0:0=alpha", "0:1=beta")


def test_a_prefetched_load_is_matched_by_request_id_and_not_read_again(worker, tmp_path):
    second_path = tmp_path / "data" / "b.csv"
    second = table_chunk(second_path, "word\nzeta\ntheta\n")
    first = table_chunk(tmp_path / "data" / "a.csv", "word\neta\n")
    assert worker.load("mb-0", first.to_dict(), 20).ok
    run_id = worker.send(protocol.Run(worker.new_id(), (0,), MiniBatchContext(0, 0), loaded="mb-0"))
    raw_messages(worker, lambda m: isinstance(m, protocol.Event))     # run() works (2 s)
    load_id = worker.send_load("mb-1", second.to_dict())
    result = worker.receive(run_id, 20)             # the load's answer comes first and is kept
    assert (type(result), result.request_id, result.lines) == (protocol.Result, run_id, ("0:0=eta",))
    assert worker.events == 2 + 2                   # load 0 and load 1: started, loaded (run's read raw)

    os.remove(second_path)                          # a second read of mini-batch 1 would fail now
    outcome = worker.load("mb-1", second.to_dict(), 20)
    assert (outcome.ok, outcome.length) == (True, 2)
    assert worker.loaded == "mb-1"
    assert worker.call((0, 1), MiniBatchContext(1, 1), 20, loaded="mb-1").lines == ("1:0=zeta", "1:1=theta")
    # running mini-batch 1 let go of mini-batch 0's table
    gone = worker.call((0,), MiniBatchContext(0, 0), 20, loaded="mb-0")
    assert gone.error == "LookupError: mini-batch 'mb-0' is not loaded in this worker (no Load, or it failed)"
    assert load_id == run_id + 1


def test_shutdown_answers_stopped_and_the_worker_exits(tmp_path):
    worker = make_worker(tmp_path)
    worker.start(60)
    try:
        worker.call(("a",), CONTEXT, 20)
        request_id = worker.send(protocol.Shutdown(worker.new_id()))
        [stopped] = raw_messages(worker, lambda m: isinstance(m, protocol.Stopped))
        assert stopped == protocol.Stopped(request_id, (str(tmp_path / "src" / "helper.py"),))
        worker.process.join(20)
        assert worker.process.exitcode == 0
        assert (tmp_path / "src" / "shutdown.log").read_text() == "shutdown\n"
    finally:
        worker.kill()
    worker.start(60)          # stop(): Shutdown, Stopped, then the process is reaped
    worker.stop()
    assert worker.process is None and (tmp_path / "src" / "shutdown.log").read_text() == "shutdown\n" * 2


def test_a_hang_raises_mini_batch_timeout_and_call_kills_the_worker(worker):
    request_id = worker.send(protocol.Run(worker.new_id(), ("hang",), CONTEXT))
    with pytest.raises(MiniBatchTimeout) as info:
        worker.receive(request_id, 0.5)
    assert str(info.value) == ("run() did not return within run_invocation_timeout=0.5 s; "
                               "the worker was killed and restarted")
    assert worker.alive()                            # receive only tells; call kills
    outcome = worker.call(("hang",), CONTEXT, 1.0)
    assert (outcome.ok, outcome.restart) == (False, True)
    assert outcome.error == ("MiniBatchTimeout: run() did not return within run_invocation_timeout=1 s; "
                             "the worker was killed and restarted")
    assert outcome.traceback.startswith("Stack of the worker when it was killed:\n")
    assert not worker.alive() and worker.process is None


def test_a_death_raises_worker_died_naming_the_exit_code(worker):
    request_id = worker.send(protocol.Run(worker.new_id(), ("exit",), CONTEXT))
    with pytest.raises(WorkerDied) as info:
        worker.receive(request_id, 20)
    assert str(info.value) == "the worker process exited during run() (exit code 3)"
    worker.kill()
    worker.start(60)
    outcome = worker.call(("exit",), CONTEXT, 20)
    assert (outcome.ok, outcome.restart, outcome.error) == (
        False, True, "WorkerDied: the worker process exited during run() (exit code 3)")
    assert worker.loaded is None and worker.process is None


def test_a_failing_import_or_init_answers_a_failure_of_its_stage(tmp_path):
    broken = make_worker(tmp_path, "def init(:\n    pass\n")
    with pytest.raises(EntryScriptError) as info:
        broken.start(60)
    script = broken.setup.entry_script
    assert str(info.value).startswith(f"importing entry_script {script!r} failed: SyntaxError: ")
    assert isinstance(info.value, ScriptImportFailed) and not isinstance(info.value, InitFailed)

    failing = make_worker(tmp_path, "def init():\n    raise OSError('no model')\ndef run(b):\n    return b\n")
    with pytest.raises(EntryScriptError) as info:
        failing.start(60)
    assert str(info.value).startswith(f"init() of entry_script {script!r} failed: OSError: no model\nTraceback")
    assert isinstance(info.value, InitFailed)
    assert failing.process is None


def test_interrupt_is_asked_while_run_works_and_kills_the_worker(worker):
    asked = []

    def interrupt():
        asked.append(time.monotonic())
        return len(asked) == 3

    start = time.monotonic()
    outcome = worker.call(("hang",), CONTEXT, 30, interrupt=interrupt, poll_s=0.2)
    assert (outcome.ok, outcome.interrupted, outcome.restart) == (False, True, True)
    assert outcome.error == "Interrupted: the run stopped early while run() worked"
    assert len(asked) == 3 and asked[0] - start >= 0.2 and time.monotonic() - start < 10
    assert worker.process is None
