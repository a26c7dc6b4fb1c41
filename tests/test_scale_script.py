"""``benchmarks/scale.py``, the out-of-core run of ``nox -s scale``, at a tiny size.

The full run takes minutes and 16 GB of generated data; this checks that the
script still runs end to end and that its Dask and NumPy values agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


def test_scale_script_runs_and_agrees_with_the_numpy_loop(tmp_path):
    arguments = ["--elements", "1000000", "--chunk", "300000", "--workers", "1"]
    arguments += ["--losses", "bpr,poisson", "--out", str(tmp_path)]
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "scale.json").read_text())
    assert [row["loss"] for row in report["results"]] == ["bpr", "poisson"]
    for row in report["results"]:
        # the same chunks from the same seeds: only the order of the sums differs
        assert row["dask"]["value"] == pytest.approx(row["numpy"]["value"], rel=1e-6)
        assert row["dask"]["peak_worker_bytes"] > 0
        assert row["dask"]["tasks"] > 4  # 4 chunks, then a reduction
    table = (tmp_path / "scale.md").read_text()
    assert "| bpr |" in table
    assert "| poisson |" in table
    assert table in completed.stdout


def test_scale_script_refuses_an_unknown_loss(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--losses", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "unknown losses ['nope']" in completed.stderr
    assert list(tmp_path.iterdir()) == []
