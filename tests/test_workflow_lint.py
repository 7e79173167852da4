"""The workflow meets the workflow catalog's standards: ``snakemake --lint`` and
``snakefmt --check`` report nothing (also run by .ci/run)."""

import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def test_snakemake_lint_reports_nothing(tmp_path):
    # in a copy: parsing a real (not dry) invocation may write the dataset listing under results/
    for name in ("Snakefile", "workflow", "profiles", "scripts", "config"):
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_snakefmt_check_passes():
    proc = subprocess.run([os.path.join(BIN, "snakefmt"), "--check", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
