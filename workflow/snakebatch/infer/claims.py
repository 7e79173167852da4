"""Claims: which shard job computes a mini-batch, so an idle shard job can take unstarted
mini-batches from a busy one (``balance_shards``) and every mini-batch is still computed once.

Shards are contiguous runs of mini-batches; with skewed item costs one shard job works long
after the others are idle. ParallelRunStep balances through one task queue; snakebatch's shard
jobs share only the run folder (a shared filesystem under SLURM), so they agree through files:

- ``claims/{invocation}/{index:09d}.{generation}`` - a **claim**: one small JSON file naming the
  invocation id, the holder's shard, host, pid and time. It is created with
  ``O_CREAT | O_EXCL``, so of any number of claimants exactly one creates a given file (also
  over NFS v3+; no ``flock``). The owner shard claims each of its mini-batches before starting
  it (front to back); an idle shard claims from the end of the busy shard with the most
  unclaimed mini-batches. The holder refreshes the claim's mtime (its heartbeat) before each
  try of the mini-batch.
- ``claims/{invocation}/{index:09d}.result.json`` - the **hand-off**: the MiniBatchResult
  (lines included) a shard computed for another shard's mini-batch, renamed into place. The
  owner takes it into its shard file at the mini-batch's place, so the merged output is in
  input order and each item is in it once. (A result without failures also goes into the
  mini-batch store by its key, whoever computed it, so a rerun reuses it.)

A claim is **void**, and the next generation (``.1``, ``.2``, ...) can be taken - again with
``O_EXCL``, so of two shards taking over a void claim exactly one does - when:

1. it names another invocation (a new snakemake invocation after a crash; claims live in one
   folder per invocation, and shard jobs remove the folders of other invocations when they start);
2. it names the claimant's own shard but another process: Snakemake runs one job per shard at a
   time, so that is an earlier attempt of this shard job (its retry);
3. its holder ran on this host and that process has exited;
4. its holder's progress record (same invocation, shard, host and pid) says the job ended
   (done, stopped, failed, interrupted) without handing the result off;
5. it is stale: its heartbeat is older than ``stale_after_s`` (``run_invocation_timeout`` +
   CLAIM_MARGIN_S) - a holder on another node that was killed, or lost its node. A holder that
   was only slow finds its claim superseded (``still_held``) and drops its result instead of
   handing it off, so its work is not counted twice.

A claim file that cannot be read (its holder crashed between creating and writing it) is live
until it is stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass

from snakebatch.storage.locks import process_gone
from snakebatch.storage.layout import RunLayout
from snakebatch.storage.atomic import replace_text_unsynced

CLAIM_MARGIN_S = 60.0  # added to run_invocation_timeout before a silent holder's claim is stale
ENDED_STATES = ("done", "stopped", "failed", "interrupted")  # progress.SHARD_STATES but running


@dataclass(frozen=True)
class Claim:
    """A claim on mini-batch ``index``: its ``generation`` (0 for the first claim, +1 per
    takeover), the ``invocation`` id, the holder's ``shard``, ``host`` and ``pid``, ``at`` (the
    holder's ``time.time()`` when it claimed, seconds)."""

    index: int
    generation: int
    invocation: str
    shard: int
    host: str
    pid: int
    at: float

    def to_json(self) -> str:
        """The claim file's text (index and generation are in its name)."""
        return json.dumps({"invocation": self.invocation, "shard": self.shard, "host": self.host, "pid": self.pid,
                           "at": self.at})

    @classmethod
    def parse(cls, index: int, generation: int, text: str) -> Claim:
        """Parse a claim file's text. Raises ValueError, KeyError or TypeError for other text."""
        data = json.loads(text)
        return cls(index, generation, str(data["invocation"]), int(data["shard"]), str(data["host"]),
                   int(data["pid"]), float(data["at"]))


def claims_root(run_dir: str) -> str:
    """``results/{run}/claims``."""
    return RunLayout(run_dir).claims_dir


def remove_other_invocations(run_dir: str, invocation: str) -> list[str]:
    """Remove the claim folders of every invocation but ``invocation`` (their claims are void
    anyway); returns the names removed. Errors (another shard removing the same folder) are
    ignored."""
    root = claims_root(run_dir)
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.name != invocation and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
    return sorted(removed)


class ClaimBoard:
    """The claims of one invocation as seen by one shard job (see the module doc).

    ``run_dir`` is ``results/{run}``; ``invocation`` the invocation id (plan.json's);
    ``shard`` the claimant's shard number; ``stale_after_s`` seconds without a heartbeat after
    which another holder's claim is void. ``host`` and ``pid`` default to this process's.
    ``create`` False: only read (the status command), the folder is not made."""

    def __init__(self, run_dir: str, invocation: str, shard: int, stale_after_s: float,
                 host: str | None = None, pid: int | None = None, create: bool = True) -> None:
        self.run_dir = run_dir
        self.invocation = invocation
        self.shard = shard
        self.stale_after_s = stale_after_s
        self.host = host if host is not None else socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.layout = RunLayout(run_dir)
        self.folder = self.layout.claims_folder(invocation)
        self.took_over: str | None = None
        if create:
            os.makedirs(self.folder, exist_ok=True)

    # -------------------------------------------------------------------------- file names
    def path(self, index: int, generation: int) -> str:
        """The claim file of generation ``generation`` of mini-batch ``index``."""
        return self.layout.claim(self.invocation, index, generation)

    def result_path(self, index: int) -> str:
        """The hand-off file of mini-batch ``index``."""
        return self.layout.hand_off(self.invocation, index)

    # -------------------------------------------------------------------------- reading
    def was_claimed(self, index: int) -> bool:
        """True when mini-batch ``index`` was ever claimed in this invocation (one stat)."""
        return os.path.exists(self.path(index, 0))

    def current(self, index: int) -> tuple[int, Claim | None] | None:
        """The newest claim of mini-batch ``index`` as ``(generation, claim)`` - claim None when
        its file cannot be read (being written, or torn) - or None when it is unclaimed."""
        generation, found = 0, None
        while True:
            try:
                with open(self.path(index, generation), encoding="utf-8") as handle:
                    text = handle.read()
            except FileNotFoundError:
                return found
            try:
                found = (generation, Claim.parse(index, generation, text))
            except (ValueError, KeyError, TypeError):
                found = (generation, None)
            generation += 1

    def void_reason(self, index: int, generation: int, claim: Claim | None, now: float | None = None) -> str | None:
        """Why the claim ``claim`` (generation ``generation`` of mini-batch ``index``; None:
        unreadable) is void, or None while it holds (rules in the module doc)."""
        now = time.time() if now is None else now
        if claim is not None:
            if claim.invocation != self.invocation:
                return f"it names another invocation ({claim.invocation})"
            if self._mine(claim):
                return None
            if claim.shard == self.shard:
                return f"an earlier attempt of this shard job (pid {claim.pid} on {claim.host}) holds it"
            if claim.host == self.host and process_gone(claim.pid, claim.at):
                return f"its holder (shard {claim.shard}, pid {claim.pid}) has exited"
            if self._holder_ended(claim):
                return f"its holder (shard {claim.shard}, pid {claim.pid} on {claim.host}) ended without its result"
        try:
            beat = os.stat(self.path(index, generation)).st_mtime
        except FileNotFoundError:
            return "it was removed"
        if now - beat > self.stale_after_s:
            who = "an unreadable claim" if claim is None else f"shard {claim.shard} (pid {claim.pid} on {claim.host})"
            return f"{who} gave no sign of life for {now - beat:.0f} s (> {self.stale_after_s:g} s)"
        return None

    def _mine(self, claim: Claim) -> bool:
        """True when this very shard job (invocation, shard, host, pid) holds ``claim``."""
        return (claim.invocation, claim.shard, claim.host, claim.pid) == (self.invocation, self.shard, self.host, self.pid)

    def _holder_ended(self, claim: Claim) -> bool:
        """True when the holder's progress record says its job ended (see the module doc, rule 4)."""
        from snakebatch.monitor.progress import ShardProgress, progress_path

        try:
            with open(progress_path(self.run_dir, claim.shard), encoding="utf-8") as handle:
                record = ShardProgress.from_json(handle.read())
        except (OSError, ValueError, TypeError):
            return False
        return ((record.invocation, record.host, record.pid) == (claim.invocation, claim.host, claim.pid)
                and record.state in ENDED_STATES)

    # -------------------------------------------------------------------------- claiming
    def _create(self, index: int, generation: int) -> Claim | None:
        """Create generation ``generation`` of mini-batch ``index``'s claim; None when it exists."""
        claim = Claim(index, generation, self.invocation, self.shard, self.host, self.pid, time.time())
        try:
            fd = os.open(self.path(index, generation), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        try:
            os.write(fd, claim.to_json().encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
        return claim

    def claim(self, index: int, take_over: bool = True) -> Claim | None:
        """Claim mini-batch ``index`` for this shard job: the Claim, or None when a live holder
        has it (or, ``take_over`` False, when anyone ever claimed it). With ``take_over``, a void
        claim (``void_reason``) is taken by creating the next generation; of several claimants
        exactly one gets each generation; ``took_over`` then says why the claim before was void
        (None after a plain claim)."""
        self.took_over = None
        made = self._create(index, 0)
        if made is not None or not take_over:
            return made
        while True:
            newest = self.current(index)
            if newest is None:  # only possible if the folder was removed under us
                return self._create(index, 0)
            generation, holder = newest
            if holder is not None and self._mine(holder):
                return holder
            reason = self.void_reason(index, generation, holder)
            if reason is None:
                return None
            made = self._create(index, generation + 1)
            if made is not None:
                self.took_over = reason
                return made
            # another claimant took generation + 1 first: judge that one

    def still_held(self, claim: Claim) -> bool:
        """True while ``claim`` is its mini-batch's newest (nobody took it over)."""
        return not os.path.exists(self.path(claim.index, claim.generation + 1))

    def heartbeat(self, claim: Claim) -> None:
        """Refresh ``claim``'s mtime: its holder is alive and working on it."""
        with contextlib.suppress(OSError):
            os.utime(self.path(claim.index, claim.generation))

    # -------------------------------------------------------------------------- hand-offs
    def hand_off(self, claim: Claim, result_json: str) -> bool:
        """Publish the result (a MiniBatchResult's JSON, lines included) computed under ``claim``
        for the owner shard: renamed into place, so the owner reads all of it or nothing. Returns
        False (and publishes nothing) when the claim was taken over meanwhile."""
        if not self.still_held(claim):
            return False
        replace_text_unsynced(self.result_path(claim.index), result_json + "\n")
        return True

    def handed_off(self, index: int) -> str | None:
        """The hand-off of mini-batch ``index`` (a MiniBatchResult's JSON) or None."""
        try:
            with open(self.result_path(index), encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
