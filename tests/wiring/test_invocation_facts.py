"""What one snakemake invocation was asked to do, read from Snakemake's workflow object."""

from types import SimpleNamespace

import pytest
from snakemake.exceptions import WorkflowError

from snakebatch.wiring.facts import InvocationFacts, cores_flag_given, facts_of


class FakeWorkflow:
    """The attributes facts_of reads from Snakemake's Workflow."""

    def __init__(self, cores=1, dryrun=False, main_process=True, main_snakefile=True):
        self._cores = cores
        self.output_settings = SimpleNamespace(dryrun=dryrun)
        self.is_main_process = main_process
        self.modifier = SimpleNamespace(is_main_snakefile=lambda: main_snakefile)

    @property
    def cores(self):
        if self._cores is None:   # as Snakemake says on a cluster run
            raise WorkflowError("no cores")
        return self._cores


@pytest.mark.parametrize("argv,given", [
    (["snakemake", "-c", "4"], True), (["snakemake", "--cores", "4"], True), (["snakemake", "--cores=4"], True),
    (["snakemake", "-c4"], True), (["snakemake", "-n"], False), (["snakemake", "-call"], False),
])
def test_the_cores_flag_in_any_spelling(argv, given):
    assert cores_flag_given(argv) is given


def test_a_dry_run_without_cores_did_not_give_its_one_core():
    facts = facts_of(FakeWorkflow(cores=1, dryrun=True), ["snakemake", "-n"])
    assert facts == InvocationFacts(dryrun=True, cores=1, cores_given=False)
    assert facts_of(FakeWorkflow(cores=1, dryrun=True), ["snakemake", "-n", "-c1"]).cores_given


def test_a_real_run_gave_its_cores():
    assert facts_of(FakeWorkflow(cores=1), ["snakemake"]) == InvocationFacts(cores=1, cores_given=True)
    assert facts_of(FakeWorkflow(cores=8, dryrun=True), ["snakemake", "-n"]).cores_given


def test_a_cluster_run_has_no_cores():
    facts = facts_of(FakeWorkflow(cores=None), ["snakemake", "--executor", "slurm"])
    assert (facts.cores, facts.cores_given) == (None, False)


def test_report_flags_and_module_use():
    facts = facts_of(FakeWorkflow(main_snakefile=False), ["snakemake", "--report", "r.html"])
    assert facts.reporting and not facts.report_after_run and not facts.main_snakefile
    assert facts_of(FakeWorkflow(), ["snakemake", "--report=r.html"]).reporting
    assert facts_of(FakeWorkflow(), ["snakemake", "--report-after-run"]).report_after_run
    # a job's own snakemake makes no report, whatever its command line says
    assert not facts_of(FakeWorkflow(main_process=False), ["snakemake", "--report", "r.html"]).reporting
