"""The benchmark scripts still run against the current API (figures are never asserted: speed
targets live in the scripts, see their docstrings)."""

import importlib.util
import os

from snakebatch.monitor import progress

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_supervision_prints_its_figures(capsys, monkeypatch):
    monkeypatch.setenv(progress.INVOCATION_ENV, "bench-test")
    _script("benchmark_supervision").main(["--mini-batches", "3", "--items", "2"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "supervision overhead, 3 mini-batches of 2 items, trivial entry script"
    for way in ("direct", "worker call", "runner"):
        assert [line for line in lines if line.startswith(f"  {way} ") and " ms   p90 " in line], out
    assert "overhead per mini-batch (runner - direct, medians): " in out
