"""``benchmarks/run.py``, the runner of ``nox -s bench``, in its quick mode.

Benchmarks are not tests, and nothing here reads a time. This checks that the
runner still runs end to end, and that what it compares is what it says it
compares: ours and the idiom agree in value, and the bare composition that its
overhead cells subtract from a whole call is the loss's own (the same primitives
in the same order, the same bits, and on PyTorch the same ATen operations), so
that a change to a loss cannot leave the overhead measured against something
else.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import support

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "run.py"


def _losses() -> list[str]:
    """The runner's losses, in its order: ``benchmarks/idioms.py``'s list."""
    spec = importlib.util.spec_from_file_location("idioms", BENCHMARKS / "idioms.py")
    assert spec is not None
    assert spec.loader is not None
    idioms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(idioms)
    return list(idioms.LOSSES)


def test_quick_run_compares_like_with_like(tmp_path: Path) -> None:
    with_torch = importlib.util.find_spec("torch") is not None
    backends = ["numpy", *(["torch", "torch-autograd"] if with_torch else [])]
    arguments = ["--quick", "--backends", ",".join(backends), "--sizes", "256"]
    arguments += ["--sequence", "none", "--memory-size", "1000"]
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=support.child_environment(),
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    losses = _losses()
    assert len(losses) == 7
    assert list(results["backends"]) == backends
    for name, outcome in results["backends"].items():
        ratios = outcome["ratios"]
        assert [cell["loss"] for cell in ratios] == losses, name
        assert all(cell["values_agree"] for cell in ratios), name
        overhead = outcome["overhead"]
        if name == "torch-autograd":  # a whole training step has no bare twin
            assert overhead == []
            continue
        assert [cell["loss"] for cell in overhead] == losses, name
        assert all(cell["bare_is_the_loss"] for cell in overhead), name
    table = (tmp_path / "results.md").read_text()
    assert "## Dispatch and validation overhead" in table
    # the plot is drawn where matplotlib is installed (the bench session's)
    plotted = importlib.util.find_spec("matplotlib") is not None
    assert (tmp_path / "ratios.png").exists() == plotted
