"""Thresholds: the counts of a run and ParallelRunStep's error thresholds over them.

``Tally`` is a frozen snapshot of the counts over some mini-batch results; ``RunningTally`` keeps
the same counts while results arrive, at O(1) per mini-batch (a shard job checks the thresholds
after every mini-batch, gather while it reads the shard files). ``threshold_breaches`` says which
thresholds a tally exceeds, in ParallelRunStep's terms: the run fails when a count is *greater
than* its threshold; ``error_threshold`` -1 ignores failed items; ``allowed_failed_count`` and
``allowed_failed_percent`` None are not checked; the percentage is of every mini-batch of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

from snakebatch.infer.results import FailedItem, MiniBatchResult


@dataclass(frozen=True)
class Tally:
    """Counts over mini-batch results: ``items``, ``succeeded``/``failed`` items,
    ``mini_batches``, ``failed_mini_batches`` (those with any failed item) and
    ``reused_mini_batches`` (taken from an earlier run)."""

    items: int
    succeeded: int
    failed: int
    mini_batches: int
    failed_mini_batches: int
    reused_mini_batches: int

    @classmethod
    def of(cls, results: list[MiniBatchResult]) -> Tally:
        """The counts over ``results`` (a sequence of MiniBatchResult)."""
        return cls(
            items=sum(r.item_count for r in results),
            succeeded=sum(r.succeeded for r in results),
            failed=sum(r.failed for r in results),
            mini_batches=len(results),
            failed_mini_batches=sum(1 for r in results if r.failed),
            reused_mini_batches=sum(1 for r in results if r.reused),
        )


class RunningTally:
    """The counts of ``Tally`` kept while results arrive: ``add(result)`` costs O(1), whatever
    the number of results so far (it looks at one result only). Also remembers the first failed
    item seen (``first_failure``). ``snapshot()`` is the Tally of every result added."""

    __slots__ = ("items", "succeeded", "failed", "mini_batches", "failed_mini_batches",
                 "reused_mini_batches", "reused_items", "first_failure")

    def __init__(self) -> None:
        self.items = 0
        self.succeeded = 0
        self.failed = 0
        self.mini_batches = 0
        self.failed_mini_batches = 0
        self.reused_mini_batches = 0
        self.reused_items = 0  # items of the reused mini-batches (the progress records' rate leaves them out)
        self.first_failure: FailedItem | None = None

    def add(self, result: MiniBatchResult) -> None:
        """Count one mini-batch result."""
        failed = result.failed
        self.items += result.item_count
        self.succeeded += result.succeeded
        self.failed += failed
        self.mini_batches += 1
        if failed:
            self.failed_mini_batches += 1
        if result.reused:
            self.reused_mini_batches += 1
            self.reused_items += result.item_count
        if self.first_failure is None and result.failures:
            self.first_failure = result.failures[0]

    @property
    def first_failure_text(self) -> str:
        """``"{item}: {error}"`` of the first failed item (``"mini-batch N: {error}"`` when the
        item is unknown); ``""`` when nothing failed."""
        f = self.first_failure
        if f is None:
            return ""
        return f"{f.item if f.item is not None else 'mini-batch %d' % f.mini_batch}: {f.error}"

    def snapshot(self) -> Tally:
        """The Tally of every result added so far."""
        return Tally(items=self.items, succeeded=self.succeeded, failed=self.failed,
                     mini_batches=self.mini_batches, failed_mini_batches=self.failed_mini_batches,
                     reused_mini_batches=self.reused_mini_batches)


def thresholds_set(spec) -> bool:
    """Whether ``spec`` (a GatherSpec or RunnerSpec) checks any threshold at all."""
    return (spec.error_threshold != -1 or spec.allowed_failed_count is not None
            or spec.allowed_failed_percent is not None)


def threshold_breaches(tally: Tally, spec) -> list[str]:
    """One message per threshold ``tally`` exceeds, in this order (empty when none is):

    - ``"{failed} failed item(s) > error_threshold {n}"`` when ``error_threshold`` is not -1 and
      ``tally.failed`` > it;
    - ``"{k} failed mini-batch(es) > allowed_failed_count {n}"`` when ``allowed_failed_count`` is
      not None and ``tally.failed_mini_batches`` > it;
    - ``"{p:.2f}% failed mini-batches > allowed_failed_percent {n:g}%"`` when
      ``allowed_failed_percent`` is not None and 100 * failed_mini_batches / ``tally.mini_batches``
      > it (not checked when ``tally.mini_batches`` is 0). ``tally.mini_batches`` is the
      denominator: pass every mini-batch of the input (also those that never ran).

    ``spec``: anything with the three threshold attributes (GatherSpec, RunnerSpec)."""
    breaches = []
    if spec.error_threshold != -1 and tally.failed > spec.error_threshold:
        breaches.append(f"{tally.failed} failed item(s) > error_threshold {spec.error_threshold}")
    if spec.allowed_failed_count is not None and tally.failed_mini_batches > spec.allowed_failed_count:
        breaches.append(f"{tally.failed_mini_batches} failed mini-batch(es) > allowed_failed_count "
                        f"{spec.allowed_failed_count}")
    if spec.allowed_failed_percent is not None and tally.mini_batches:
        percent = 100.0 * tally.failed_mini_batches / tally.mini_batches
        if percent > spec.allowed_failed_percent:
            breaches.append(f"{percent:.2f}% failed mini-batches > allowed_failed_percent "
                            f"{spec.allowed_failed_percent:g}%")
    return breaches
