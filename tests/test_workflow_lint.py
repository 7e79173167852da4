"""The workflow meets the workflow catalog's standards: ``snakemake --lint`` and
``snakefmt --check`` report nothing (also run by .ci/run)."""

import os
import re
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


def _included_rule_files():
    """The .smk files the Snakefile includes, in include order."""
    with open(os.path.join(REPO, "Snakefile"), encoding="utf-8") as handle:
        return re.findall(r'^include: "([^"]+)"', handle.read(), flags=re.M)


def _defined_names(text):
    """Names a rule file defines at its top level: assignments, imports, functions, rules."""
    names = set(re.findall(r"^([A-Za-z_]\w*)\s*=", text, flags=re.M))
    names |= set(re.findall(r"^(?:def|rule)\s+([A-Za-z_]\w*)", text, flags=re.M))
    for imported in re.findall(r"^(?:from\s+\S+\s+)?import\s+(.+)$", text, flags=re.M):
        names |= {part.split(" as ")[-1].strip(" ()") for part in imported.split(",")}
    return names - {""}


def test_rules_are_wiring_no_rule_file_reads_what_a_later_include_defines():
    files = _included_rule_files()
    assert files[0] == "workflow/rules/common.smk" and len(files) >= 6
    texts = []
    for name in files:
        with open(os.path.join(REPO, name), encoding="utf-8") as handle:
            texts.append(handle.read())
    for position, text in enumerate(texts):
        assert len(text.splitlines()) <= 150, f"{files[position]} is over 150 lines"
        later = set().union(*(_defined_names(t) for t in texts[position + 1:]))
        used = set(re.findall(r"\b[A-Za-z_]\w*\b", re.sub(r"#.*", "", text))) - _defined_names(text)
        read = sorted(n for n in used & later if n[0].isupper())
        assert not read, f"{files[position]} reads {read}, defined by a later include"
