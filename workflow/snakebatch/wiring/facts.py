"""What one snakemake invocation was asked to do, read once from Snakemake's workflow object.

The rest of snakebatch.wiring takes an ``InvocationFacts`` instead of the workflow object, so it
can be tested without Snakemake; ``facts_of`` is the one place that reads the workflow (and the
command line, for what Snakemake's API does not say: whether ``--cores`` and ``--report`` were given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snakemake.exceptions import WorkflowError


@dataclass(frozen=True)
class InvocationFacts:
    """is_main_process: the snakemake the user started (False: a job's own snakemake, e.g. a
    cluster job). dryrun: ``-n``. cores: the cores snakemake was given (it fills in 1 for a dry
    run without ``--cores``; None on a cluster run, which has none); cores_given: the user gave
    them. reporting: ``--report FILE`` (no job runs; the report's files are made at parse time).
    report_after_run: ``--report-after-run``. main_snakefile: False when this workflow is a module
    of a user's Snakefile."""

    is_main_process: bool = True
    dryrun: bool = False
    cores: int | None = 1
    cores_given: bool = True
    reporting: bool = False
    report_after_run: bool = False
    main_snakefile: bool = True


def cores_flag_given(argv: list[str]) -> bool:
    """True when ``argv`` holds ``-c``/``--cores`` in any spelling (``-c4``, ``--cores=4``)."""
    return any(a in ("-c", "--cores") or a.startswith("--cores=") or re.fullmatch(r"-c\d+", a) for a in argv)


def snakemake_cores(workflow) -> int | None:
    """The cores Snakemake's ``workflow`` was given; None when it has none (a cluster run)."""
    try:
        return workflow.cores
    except WorkflowError:
        return None


def facts_of(workflow, argv: list[str]) -> InvocationFacts:
    """The facts of Snakemake's ``workflow`` object (the ``workflow`` global of a Snakefile) and
    the command line ``argv`` (``sys.argv``) it was started with."""
    dryrun = bool(workflow.output_settings.dryrun)
    cores = snakemake_cores(workflow)
    return InvocationFacts(
        is_main_process=bool(workflow.is_main_process),
        dryrun=dryrun,
        cores=cores,
        cores_given=cores is not None and (not dryrun or cores != 1 or cores_flag_given(argv)),
        reporting=bool(workflow.is_main_process) and any(a == "--report" or a.startswith("--report=") for a in argv),
        report_after_run="--report-after-run" in argv,
        main_snakefile=bool(workflow.modifier.is_main_snakefile()),
    )
