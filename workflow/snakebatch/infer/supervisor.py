"""The worker process mechanism: start a worker, send it requests of ``protocol``, wait for the
answers with a timeout, kill it when it hangs (its whole process group, and what it left in other
sessions: ``descendants``), and tell how it died.

``WorkerProcess`` implements ``workers.Worker``; it makes no policy call (tries, bisection, the
store, early stop live in ``attempts`` and the shard loop). A hang, a death or an interrupt comes
back as a failed ``workers.Outcome`` whose ``cause`` is the ``MiniBatchTimeout``, ``WorkerDied``
or ``workers.Interrupted`` the receive loop raised; a failed start raises ``ScriptImportFailed``
or ``InitFailed``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time

from snakebatch.infer import descendants, protocol
from snakebatch.infer.entry import MiniBatchContext
from snakebatch.errors import MiniBatchTimeout, WorkerDied
from snakebatch.infer.worker import WorkerSetup, worker_main
from snakebatch.infer.workers import InFlight, InitFailed, Interrupted, Outcome, ScriptImportFailed

log = logging.getLogger("snakebatch.infer.job")

_LIVE_WORKERS: set[int] = set()  # pids of the workers this process runs now (spared by kill_descendants)

_SIGNAL_CAUSES = {
    signal.SIGKILL: "killed: out of memory (the kernel's OOM killer) or an external kill",
    signal.SIGSEGV: "segmentation fault, usually in native code",
    signal.SIGABRT: "aborted, usually by native code",
    signal.SIGBUS: "bus error in native code",
    signal.SIGTERM: "terminated from outside",
}


def describe_exit(code: int | None) -> str:
    """Human words for a worker's exit code: ``exit code 3``, ``signal SIGSEGV (segmentation
    fault, ...)``; negative codes are signals (multiprocessing's convention)."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"signal {-code}"
        cause = _SIGNAL_CAUSES.get(sig)
        return f"signal {sig.name}" + (f": {cause}" if cause else "")
    return f"exit code {code}"


def start_failure(entry_script: str, failure: protocol.Failure) -> InitFailed | ScriptImportFailed:
    """The error a worker's start ends with when its handshake is ``failure``: stage ``import``
    (ScriptImportFailed), ``init`` (InitFailed: init() raised) or ``ready`` (InitFailed, but named
    as what it is: the worker's own setup failed after init() returned)."""
    error = f"{failure.error.error}\n{failure.error.traceback}"
    if failure.stage == "ready":
        return InitFailed(f"the worker running {entry_script!r} failed after init() returned, before it was ready: "
                          + error)
    if failure.stage == "init":
        return InitFailed(f"init() of entry_script {entry_script!r} failed: {error}")
    return ScriptImportFailed(f"importing entry_script {entry_script!r} failed: {error}")


@contextlib.contextmanager
def _environment(values: dict):
    """``os.environ`` with ``values`` set, as long as the block runs (while a worker is spawned:
    the child starts with them, before it imports anything)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class WorkerProcess:
    """One supervised worker process (spawned, so CUDA and TensorFlow start clean).

    ``start(timeout)`` blocks until ``init()`` returned (at most ``timeout`` seconds: then the worker
    is killed, its stack recorded, and the start fails); it raises ScriptImportFailed when the
    script cannot be imported, InitFailed when init() raised or timed out or the process died
    during init() (both EntryScriptError). ``call(items, context, timeout)`` returns an
    Outcome; on timeout or death the process is gone and ``call`` starts a new one next time.
    ``send_load`` asks the worker to read a mini-batch without waiting (prefetch, read while run()
    works); ``load`` waits for that read (sending it first when it was not sent).

    Attributes: ``modules`` (source modules the worker reported), ``takes_context``,
    ``main_thread`` (id of the worker's thread that runs run()), ``loaded`` (key of the mini-batch
    whose input the last ``load`` read, None after a restart), ``events`` (Events received),
    ``last_event_at`` (``time.time()`` of the last one, in the worker; None before any) and
    ``running`` (the InFlight run() call: set by the worker's ``started`` Event of a ``call``,
    None again once it is answered, timed out or killed)."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.process = None
        self.conn = None
        self.starts = 0
        self.modules: list[str] = []
        self.takes_context = False
        self.main_thread = None
        self.loaded: str | None = None
        self.events = 0
        self.last_event_at: float | None = None
        self.running: InFlight | None = None
        self._run: tuple[int, int, int] | None = None  # (request id, mini-batch index, items) of the call waited for
        self._ids = itertools.count(1)
        self._loads: dict[str, int] = {}  # mini-batch key -> request id of its Load not yet waited for
        self._answers: dict[int, protocol.Result | protocol.Failure] = {}  # arrived while waiting for another
        self._bystanders: set[int] = set()  # this process's children before the worker started

    # ---------------------------------------------------------------------------- start and stop
    def start(self, timeout: float | None = None) -> None:
        """Spawn the worker and wait at most ``timeout`` s (None: forever) for its Ready. Raises
        ScriptImportFailed or InitFailed (see the class doc); the worker is then killed."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, self.setup),
                                   name=self.setup.context.agent_name, daemon=True)
        self.loaded = None
        self._loads, self._answers = {}, {}
        descendants.become_subreaper()  # orphans of the worker come to us: kill() finds them
        self._bystanders = descendants.children_now()
        with _environment(self.setup.process_environment or {}):  # a spawned child copies os.environ
            self.process.start()
        _LIVE_WORKERS.add(self.process.pid)
        child.close()
        self.conn = parent
        self.starts += 1
        log.info("worker %s started (pid %s, start #%d); waiting for init()",
                 self.setup.context.agent_name, self.process.pid, self.starts)
        try:
            message = self._receive(timeout)
        except TimeoutError:
            stack = self.dump_stack()
            self.kill()
            raise InitFailed(f"init() of entry_script {self.setup.entry_script!r} failed: InitTimeout: "
                             f"importing the script and init() did not finish within init_timeout="
                             f"{timeout:g} s; the worker was killed\n{stack}") from None
        if message is None:
            self.process.join(5)
            code = self.process.exitcode
            self.kill()
            raise InitFailed(f"the worker running {self.setup.entry_script!r} died during import/init() "
                             f"({describe_exit(code)}); see {self.setup.stderr_path}")
        if isinstance(message, protocol.Failure):
            self.kill()
            raise start_failure(self.setup.entry_script, message)
        self.modules = list(message.modules)
        self.takes_context, self.main_thread = bool(message.takes_context), message.main_thread_id
        log.info("worker %s ready", self.setup.context.agent_name)

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.process is not None and self.process.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to call shutdown() and exit; kill it when it does not within ``timeout``."""
        if self.alive():
            try:
                request_id = self.send(protocol.Shutdown(self.new_id()))
                deadline = time.monotonic() + timeout
                while True:
                    message = self._receive(max(0.0, deadline - time.monotonic()))
                    if message is None:
                        break
                    if isinstance(message, protocol.Event):
                        self._note_event(message)
                    elif isinstance(message, protocol.Stopped) and message.request_id == request_id:
                        self.modules = sorted(set(self.modules) | set(message.modules))
                        break
                    else:
                        self._note_modules(message)
            except TimeoutError:
                log.warning("worker %s: shutdown() did not return within %g s; killed",
                            self.setup.context.agent_name, timeout)
            except (BrokenPipeError, OSError) as exc:
                log.warning("worker %s: asking it to shut down failed (%s); killed",
                            self.setup.context.agent_name, exc)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and its process group (what run() spawned), then reap it; then
        every process it left behind in another session or group (``descendants``)."""
        if self.process is not None:
            left = descendants.descendants_of(self.process.pid) if self.process.pid is not None else []
            if self.process.pid is not None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:  # the group is gone already
                    pass
                except PermissionError as exc:
                    log.warning("worker %s: its process group cannot be killed (%s); killing the worker alone",
                                self.setup.context.agent_name, exc)
            if self.process.is_alive():
                self.process.kill()
            self.process.join(10)
            _LIVE_WORKERS.discard(self.process.pid)
            self.process = None
            descendants.kill_descendants(self._bystanders | _LIVE_WORKERS, left)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.loaded = None
        self._loads, self._answers = {}, {}

    # ---------------------------------------------------------------------------------- requests
    def call(self, items: tuple, context: MiniBatchContext, timeout: float,
             interrupt=None, poll_s: float = 1.0, loaded: str | None = None) -> Outcome:
        """Send one mini-batch to the running worker (see ``start``) and wait at most ``timeout`` s.
        ``items``: file paths, or row positions in the input of mini-batch ``loaded`` (a key
        ``load`` read). ``interrupt`` (no arguments -> bool) is asked every ``poll_s`` seconds
        while run() works; when it says True the worker is killed and the Outcome is
        ``interrupted``."""
        request = protocol.Run(self.new_id(), tuple(items), context, loaded)
        self._run = (request.request_id, context.minibatch_index, len(request.items))
        try:
            return self._outcome(request, timeout, interrupt, poll_s, "run()")
        finally:
            self._run = self.running = None

    def send_load(self, key: str, payload, kind: str = "mini_batch") -> int:
        """Ask the running worker to read mini-batch ``key`` (``payload``: what loader ``kind``
        needs, for ``"mini_batch"`` a kinds.MiniBatch as JSON) and return the request id at once; the
        worker reads it even while run() works. ``load(key, ...)`` gets the answer. Raises
        WorkerDied when the worker is gone."""
        request_id = self.send(protocol.Load(self.new_id(), key, payload, kind))
        self._loads[key] = request_id
        return request_id

    def load(self, key: str, payload, timeout: float, kind: str = "mini_batch") -> Outcome:
        """Have the worker read mini-batch ``key`` and wait at most ``timeout`` s for the answer
        (of the ``send_load`` sent earlier, or of a Load sent now, which first frees the inputs the
        worker read before). ``length`` of the Outcome is
        the row count. A read error (malformed row, missing file) is a failed Outcome whose error
        starts with the exception's type (``TableReadError``); a hang or a death as in ``call``."""
        request_id = self._loads.pop(key, None)
        if request_id is None:
            request = protocol.Load(self.new_id(), key, payload, kind, replace=True)
        else:
            request = request_id
        outcome = self._outcome(request, timeout, None, 1.0, "reading the mini-batch")
        self.loaded = key if outcome.ok else None
        return outcome

    def _outcome(self, request, timeout: float, interrupt, poll_s: float, what: str) -> Outcome:
        """Send ``request`` (or, an int, wait for the answer to that request id sent earlier) and
        turn the answer, a timeout, an interrupt or a death into an Outcome."""
        try:
            request_id = request if isinstance(request, int) else self.send(request, what)
            reply = self.receive(request_id, timeout, interrupt, poll_s, what)
        except MiniBatchTimeout as exc:
            stack = self.dump_stack()
            self.kill()
            return Outcome(ok=False, cause=exc, traceback=stack)
        except WorkerDied as exc:
            self.kill()
            return Outcome(ok=False, cause=exc)
        except Interrupted as exc:
            self.kill()
            return Outcome(ok=False, cause=exc)
        return Outcome.from_reply(reply)

    def receive(self, request_id: int, timeout: float, interrupt=None, poll_s: float = 1.0,
                what: str = "run()") -> protocol.Result | protocol.Failure:
        """Wait at most ``timeout`` s for the answer to request ``request_id``. Events are counted
        (``events``, ``last_event_at``); answers to other requests are kept for their own wait.
        Raises MiniBatchTimeout (the worker still runs: the caller kills it), WorkerDied (the
        process exited; its exit code or signal is in the message) or, when ``interrupt()``
        says True (asked every ``poll_s`` s), workers.Interrupted."""
        if request_id in self._answers:
            return self._answers.pop(request_id)
        now = time.monotonic()
        deadline = now + timeout
        ask_at = now + poll_s
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                raise MiniBatchTimeout(f"{what} did not return within run_invocation_timeout={timeout:g} s; "
                                       "the worker was killed and restarted")
            if interrupt is not None:
                if now >= ask_at:
                    ask_at = now + poll_s
                    if interrupt():
                        raise Interrupted("the run stopped early while run() worked")
                wait = min(left, max(0.0, ask_at - now))
            else:
                wait = left
            try:
                message = self._receive(wait)
            except TimeoutError:
                continue
            if message is None:
                raise self._died(what)
            if isinstance(message, protocol.Event):
                self._note_event(message)
                continue
            self._note_modules(message)
            if getattr(message, "request_id", None) == request_id:
                return message
            self._answers[message.request_id] = message

    def new_id(self) -> int:
        """A request id not used before with this WorkerProcess (ids start at 1)."""
        return next(self._ids)

    def send(self, request, what: str = "run()") -> int:
        """Send ``request`` (a protocol record; its id from ``new_id``) without waiting; returns
        its request id, for ``receive``. Raises WorkerDied when the pipe is broken."""
        if self.conn is None:
            raise WorkerDied(f"the worker process is not running ({what} not sent)")
        try:
            self.conn.send(request)
        except (BrokenPipeError, OSError):
            raise self._died(what) from None
        return request.request_id

    # ----------------------------------------------------------------------------------- helpers
    def _died(self, what: str) -> WorkerDied:
        code = None
        if self.process is not None:
            self.process.join(5)
            code = self.process.exitcode
        return WorkerDied(f"the worker process exited during {what} ({describe_exit(code)})")

    def _note_event(self, event: protocol.Event) -> None:
        self.events += 1
        self.last_event_at = event.time
        if event.kind == "started" and self._run is not None and event.request_id == self._run[0]:
            self.running = InFlight(mini_batch=self._run[1], items=self._run[2], since=event.time)

    def _note_modules(self, message) -> None:
        if getattr(message, "modules", None):
            self.modules = sorted(set(self.modules) | set(message.modules))

    def _receive(self, timeout: float | None):
        """Next message, or None when the process died; raises TimeoutError after ``timeout`` s."""
        ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], timeout)
        if not ready:
            raise TimeoutError
        if self.conn in ready or self.conn.poll():
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                return None
        return None

    def dump_stack(self, wait: float = 2.0) -> str:
        """Where the worker is now: the stack of each of its threads (faulthandler, also inside
        native code), '' when it cannot tell within ``wait`` seconds."""
        path = self.setup.stack_path
        try:
            open(path, "w").close()
            os.kill(self.process.pid, signal.SIGUSR1)
        except (OSError, AttributeError) as exc:
            log.warning("worker %s: its stack cannot be asked for (%s)", self.setup.context.agent_name, exc)
            return ""
        deadline = time.monotonic() + wait
        text = ""
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with open(path, encoding="utf-8", errors="replace") as handle:
                current = handle.read()
            if current and current == text:
                break
            text = current
        if not text:
            return ""
        # One block per thread; the main thread (the one in run()) goes first.
        blocks = [b for b in text.split("\n\n") if b.strip()]
        main = f"0x{self.main_thread:016x}" if self.main_thread else None
        blocks.sort(key=lambda block: 0 if main and main in block.split("\n", 1)[0] else 1)
        return "Stack of the worker when it was killed:\n" + "\n\n".join(blocks) + "\n"
