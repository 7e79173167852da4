"""The live view: one aggregated progress picture of a running run, in the snakemake process.

Every shard job publishes a ``progress.ShardProgress`` record in ``results/{run}/progress/`` when
it starts, after every mini-batch and when it ends; this module reads the records of the current
invocation (so it works wherever the run folder is shared, a SLURM cluster's filesystem included),
added up once by snakebatch.monitor.aggregate, and makes a ``RunSnapshot`` of them: mini-batches
done/total, items succeeded/failed, items/s over the last minute, elapsed time and ETA.
``LiveView`` is a background thread started by the workflow's ``onstart`` hook (never in a dry
run, which runs no hooks): on a terminal it draws a rich progress bar, elsewhere (CI, SLURM's log
files) it prints one plain timestamped line every ``progress_interval`` seconds; both also append
a timestamped line to ``logs/job_progress_overview.txt`` every interval (ParallelRunStep's file).
When the run ends, the last line is drawn from gather's ``summary.json``: exactly 100% of the
mini-batches when it succeeded.

ParallelRunStep's counterpart is its ``job_progress_overview.txt`` and the "mini batches
processed" lines of its ``logs/`` (azureml_user/parallel_run, ``progress_update_timeout``).
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
from dataclasses import dataclass

from snakebatch.monitor import aggregate
from snakebatch.monitor.once import warn_once
from snakebatch.storage.layout import RunLayout

RATE_WINDOW_S = 60.0  # items/s are measured over the last minute


@dataclass(frozen=True)
class RunSnapshot:
    """The run's progress at ``time`` (``time.time()`` seconds), added up over the shards'
    progress records: mini-batches ``done_mini_batches`` of ``total_mini_batches`` (0 while no
    shard has reported), ``reused_mini_batches`` among them, items ``done_items`` of
    ``total_items`` with ``succeeded_items`` and ``failed_items``; ``shards_reporting`` of
    ``shard_count`` shards have a record, ``shards_running`` of them run; ``items_per_s`` over the
    last minute (0.0 before two samples) of the items computed in this invocation (the items of
    reused mini-batches, ``reused_items``, took no time); ``elapsed_s`` since the run started;
    ``eta_s`` seconds left at that rate (None when unknown); ``finished``: taken from gather's
    summary; ``running_mini_batches``: mini-batches in a run() call now (one at most per running
    shard, from the records' ``running_since``), ``running_longest_s`` the seconds the oldest of
    them has been in run() (0.0 when none)."""

    time: float
    shard_count: int
    shards_reporting: int
    shards_running: int
    done_mini_batches: int
    total_mini_batches: int
    reused_mini_batches: int
    done_items: int
    total_items: int
    succeeded_items: int
    failed_items: int
    items_per_s: float
    elapsed_s: float
    eta_s: float | None
    finished: bool = False
    reused_items: int = 0
    running_mini_batches: int = 0
    running_longest_s: float = 0.0

    @property
    def percent(self) -> float:
        """Mini-batches done in percent of all (0.0 while the total is unknown); exactly 100.0
        when every mini-batch is done."""
        if self.total_mini_batches <= 0:
            return 100.0 if self.finished else 0.0
        if self.done_mini_batches >= self.total_mini_batches:
            return 100.0
        return 100.0 * self.done_mini_batches / self.total_mini_batches

    def to_dict(self) -> dict:
        """The snapshot as JSON-ready fields, plus ``percent``."""
        import dataclasses

        return {**dataclasses.asdict(self), "percent": round(self.percent, 3)}


class RateWindow:
    """Items/s over the last ``window_s`` seconds, from samples ``(time, done_items)`` added in
    time order. O(samples in the window) memory."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, at: float, done_items: int) -> float:
        """Add a sample; return the rate over the window (0.0 until two samples span time)."""
        self._samples.append((at, done_items))
        while len(self._samples) > 2 and at - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        first_at, first_done = self._samples[0]
        return (done_items - first_done) / (at - first_at) if at > first_at else 0.0


def snapshot(run: aggregate.RunProgress, shard_count: int, now: float, started_at: float,
             rate: float) -> RunSnapshot:
    """The RunSnapshot of the progress of one invocation (``aggregate.read_run_progress``) of a
    run of ``shard_count`` shards, at ``now``, for a run started at ``started_at`` (seconds since
    the epoch), at ``rate`` items/s. Shards without a record yet count as nothing done; the run's
    totals come from any record (every manifest carries them)."""
    eta = (run.total_items - run.done_items) / rate if rate > 0 and run.total_items else None
    return RunSnapshot(
        time=now, shard_count=shard_count, shards_reporting=run.shards_reporting,
        shards_running=run.shards_running, done_mini_batches=run.done_mini_batches,
        total_mini_batches=run.total_mini_batches, reused_mini_batches=run.reused_mini_batches,
        done_items=run.done_items, total_items=run.total_items, succeeded_items=run.succeeded_items,
        failed_items=run.failed_items, items_per_s=rate, elapsed_s=max(0.0, now - started_at), eta_s=eta,
        reused_items=run.reused_items, running_mini_batches=run.running_mini_batches,
        running_longest_s=max(0.0, now - run.running_since) if run.running_since is not None else 0.0)


def finished_snapshot(summary: dict, shard_count: int, now: float, started_at: float) -> RunSnapshot:
    """The last snapshot of a run whose gather wrote ``summary`` (``summary.json`` as a dict):
    gather's counts, every mini-batch of a succeeded run done (100%); the rate is of the items
    computed in this invocation (``computed_items``; all of them in a summary without it)."""
    mini_batches = int(summary.get("mini_batches", 0))
    items = int(summary.get("items", 0))
    computed = int(summary.get("computed_items", items))
    elapsed = max(0.0, now - started_at)
    return RunSnapshot(
        time=now, shard_count=shard_count, shards_reporting=shard_count, shards_running=0,
        done_mini_batches=mini_batches, total_mini_batches=mini_batches,
        reused_mini_batches=int(summary.get("reused_mini_batches", 0)), done_items=items, total_items=items,
        succeeded_items=int(summary.get("succeeded", 0)), failed_items=int(summary.get("failed", 0)),
        items_per_s=computed / elapsed if elapsed > 0 else 0.0, elapsed_s=elapsed, eta_s=0.0, finished=True,
        reused_items=items - computed)


def clock(seconds: float | None) -> str:
    """``H:MM:SS`` of ``seconds`` (``"?"`` for None): 3725.2 -> ``"1:02:05"``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def describe(snap: RunSnapshot) -> str:
    """One line for people: ``"12/40 mini-batches (30.0%), 2 in run() (longest 0:00:09), 118
    succeeded, 2 failed of 400 items, 8.3 items/s, elapsed 0:00:15, ETA 0:00:34"`` (the mini-batches
    in run() only while some are; ``(57 reused)`` after items/s when some were reused); before any
    shard reports, how many are awaited."""
    if snap.total_mini_batches == 0 and not snap.finished:
        return f"waiting for {snap.shard_count} shard(s) to start, elapsed {clock(snap.elapsed_s)}"
    return (f"{snap.done_mini_batches}/{snap.total_mini_batches} mini-batches ({snap.percent:.1f}%), "
            + _counts(snap))


def _counts(snap: RunSnapshot) -> str:
    running = (f"{snap.running_mini_batches} in run() (longest {clock(snap.running_longest_s)}), "
               if snap.running_mini_batches else "")
    reused = f" ({snap.reused_items} reused)" if snap.reused_items else ""
    return (f"{running}{snap.succeeded_items} succeeded, {snap.failed_items} failed of {snap.total_items} items, "
            f"{snap.items_per_s:.1f} items/s{reused}, elapsed {clock(snap.elapsed_s)}, ETA {clock(snap.eta_s)}")


def timestamp(at: float) -> str:
    """``2026-12-02 01:02:03`` (UTC) of ``at`` seconds since the epoch."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def append_overview(path: str, line: str, at: float | None = None) -> None:
    """Append ``"{timestamp} UTC: {line}"`` to ``logs/job_progress_overview.txt`` (``path``), a log
    that grows while the run works (one write of one line; parent folders are created)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{timestamp(time.time() if at is None else at)} UTC: {line}\n")


class LiveView:
    """The live progress of one invocation (see module doc), on a background thread.

    ``run_dir``: ``results/{run_name}``; ``invocation``: the id in ``plan.json`` the shard jobs
    put in their records; ``shard_count``: the plan's shards; ``interval_s``: seconds between
    plain lines and overview lines (``progress_interval``); ``stream``: where lines go
    (``sys.stderr``, Snakemake's console); ``terminal``: draw a rich bar (None: when ``stream``
    is a TTY). ``start()`` begins, ``stop(outcome)`` draws the last picture and ends the thread."""

    TICK_S = 0.5  # how often the records are read for the bar (plain lines come every interval_s)

    def __init__(self, run_dir: str, invocation: str, shard_count: int, interval_s: float = 30.0,
                 stream=None, terminal: bool | None = None) -> None:
        self.layout = RunLayout(run_dir)
        self.invocation = invocation
        self.shard_count = shard_count
        self.interval_s = interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = terminal if terminal is not None else _isatty(self.stream)
        self.started_at = time.time()
        self._rate = RateWindow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None
        self.last: RunSnapshot | None = None

    def read(self, now: float | None = None) -> RunSnapshot:
        """The snapshot of the records on disk now (and a sample for the rate)."""
        now = time.time() if now is None else now
        run = aggregate.read_run_progress(self.layout.root, self.invocation)
        rate = self._rate.add(now, run.computed_items)  # reused mini-batches took no time
        self.last = snapshot(run, self.shard_count, now, self.started_at, rate)
        return self.last

    def start(self) -> LiveView:
        """Start the overview log afresh and the thread; returns self."""
        try:
            os.makedirs(self.layout.logs_dir, exist_ok=True)
            with open(self.layout.progress_overview, "w", encoding="utf-8") as handle:
                handle.write(f"{timestamp(self.started_at)} UTC: run started, {self.shard_count} shard(s)\n")
        except OSError as exc:
            warn_once(f"writing {self.layout.progress_overview}", exc)
        if self.terminal:
            self._bar = _Bar(self.stream)
        self._thread = threading.Thread(target=self._loop, name="snakebatch-live-view", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_line = time.monotonic() + self.interval_s
        while not self._stop.wait(self.TICK_S if self._bar is not None else min(self.TICK_S, self.interval_s)):
            try:
                snap = self.read()
                if self._bar is not None:
                    self._bar.update(snap)
                if time.monotonic() >= next_line:
                    next_line += self.interval_s * max(1, int((time.monotonic() - next_line) // self.interval_s) + 1)
                    self._line(snap)
            except Exception as exc:  # the view must never break the run it watches
                warn_once("the live view's update", exc)

    def _line(self, snap: RunSnapshot) -> None:
        text = describe(snap)
        try:
            append_overview(self.layout.progress_overview, text, snap.time)
        except OSError as exc:
            warn_once(f"writing {self.layout.progress_overview}", exc)
        if self._bar is None:
            print(f"snakebatch: {timestamp(snap.time)} {text}", file=self.stream, flush=True)

    def stop(self, outcome: str = "succeeded") -> RunSnapshot:
        """End the thread and show the last picture: from ``summary.json`` when gather wrote it in
        this run (``outcome`` ``"succeeded"``), else from the records. Returns it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        now = time.time()
        snap = None
        if outcome == "succeeded":
            summary = aggregate.summary_or_none(self.layout.summary, since=self.started_at - 1)
            if summary is not None and summary.get("status") == "succeeded":
                snap = finished_snapshot(summary, self.shard_count, now, self.started_at)
        if snap is None:
            snap = self.read(now)
        if self._bar is not None:
            self._bar.update(snap)
            self._bar.close()
        self._line(snap)
        return snap


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Bar:
    """A rich progress bar on the terminal ``stream``: mini-batches done/total, items succeeded
    and failed, items/s, elapsed, ETA. Lines others print meanwhile appear above it."""

    def __init__(self, stream) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]snakebatch"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[text]}"), console=Console(file=stream), transient=False,
            redirect_stdout=False, redirect_stderr=False, refresh_per_second=4)
        self.task = self.progress.add_task("run", total=None, text="waiting for the shards to start")
        self._handlers = self._route_log_handlers(stream)
        self.progress.start()

    def _route_log_handlers(self, stream) -> list:
        """Make the logging handlers that write to ``stream`` (Snakemake's console handler) write
        through rich, so their lines appear above the bar instead of on it; returns
        (handler, stream) pairs to restore."""
        import logging

        from rich.file_proxy import FileProxy

        loggers = [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                           if isinstance(v, logging.Logger)]
        routed = []
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (
                        stream, sys.__stderr__, sys.__stdout__) and _isatty(handler.stream):
                    routed.append((handler, handler.stream))
                    handler.setStream(FileProxy(self.progress.console, handler.stream))
        return routed

    def update(self, snap: RunSnapshot) -> None:
        total = snap.total_mini_batches or None
        text = f"{snap.done_mini_batches}/{snap.total_mini_batches} mini-batches, {_counts(snap)}"
        self.progress.update(self.task, total=total, completed=snap.done_mini_batches,
                             text=text if total else describe(snap))

    def close(self) -> None:
        self.progress.stop()
        for handler, stream in self._handlers:
            try:
                handler.flush()
                handler.setStream(stream)
            except Exception as exc:  # the terminal is given back to the other handlers all the same
                warn_once("giving a log handler its stream back", exc)


_VIEW: LiveView | None = None


def start_live_view(run_dir: str, invocation: str, shard_count: int, interval_s: float) -> LiveView:
    """Start the one live view of this snakemake process (the ``onstart`` hook calls it)."""
    global _VIEW
    if _VIEW is not None:
        _VIEW.stop("replaced")
    else:  # snakemake ending without its onsuccess/onerror hooks still gets the terminal back
        atexit.register(stop_live_view, "ended")
    _VIEW = LiveView(run_dir, invocation, shard_count, interval_s).start()
    return _VIEW


def stop_live_view(outcome: str) -> RunSnapshot | None:
    """Stop the live view started by ``start_live_view`` (``onsuccess``: ``"succeeded"``,
    ``onerror``: ``"failed"``); None when none runs."""
    global _VIEW
    view, _VIEW = _VIEW, None
    return view.stop(outcome) if view is not None else None
