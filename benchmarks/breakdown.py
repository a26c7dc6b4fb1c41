#!/usr/bin/env python3
"""Where the time goes in the cells that miss their target: a profile, step by step.

``nox -s bench`` runs it after ``run.py`` (without arguments after ``--``); or::

    python benchmarks/breakdown.py [--quick] [--out DIR]

For each case it times, interleaved in one process like ``run.py`` (see
``harness.py``), a whole call of ours, a whole call of the idiom, and the
steps each is made of, and writes one Markdown table per case, the median
time of every step, to ``breakdown.md`` in ``--out`` (and prints it). The
steps of a call add up to about its time; the rows say which steps the two
sides share and which only ours pays.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import idioms

Fn = Callable[..., Any]
Step = tuple[str, Fn, tuple[Any, ...]]

HERE = Path(__file__).resolve().parent
BATCH, SEQUENCE = 256, 50


def _numpy_masked_regression() -> tuple[str, list[Step]]:
    import numpy as np

    from arraylosses import regression_loss
    from arraylosses._call import prepare

    rng = np.random.default_rng(0)
    observed = rng.integers(1, 6, size=(BATCH, SEQUENCE)).astype(np.float32)
    predicted = rng.uniform(1.0, 5.0, size=(BATCH, SEQUENCE)).astype(np.float32)
    lengths = rng.integers(1, SEQUENCE + 1, size=BATCH)
    mask = np.arange(SEQUENCE)[None, :] < lengths[:, None]
    loss = (predicted - observed) ** 2
    float_mask = mask.astype(np.float32)
    names = ("observed_ratings", "predicted_ratings")
    call = prepare(observed, predicted, mask, "mean", names=names, first_is_rating=True)
    backend = call.backend
    idiom = idioms.numpy_idioms()["regression"]
    steps: list[Step] = [
        ("ours: regression_loss", regression_loss, (observed, predicted, mask)),
        ("idiom", idiom, (observed, predicted, mask)),
        ("both: ŷ - y", np.subtract, (predicted, observed)),
        ("both: its square", np.square, (loss,)),
        ("ours: prepare (dispatch and checks)", _prepare_ratings, (call, mask)),
        ("ours: masked-out terms to +0 (bits × 0 or 1)", backend.keep, (mask, loss)),
        ("ours: sum of the kept terms", backend.sum, (loss,)),
        ("ours: count of the mask", backend.count, (mask, loss.dtype)),
        ("ours: finish (the three above, and the division)", call.finish, (loss,)),
        ("idiom: mask as float32", mask.astype, (np.float32,)),
        ("idiom: loss × mask", np.multiply, (loss, float_mask)),
        ("idiom: sum of the product", np.ndarray.sum, (loss,)),
        ("idiom: sum of the float mask", np.ndarray.sum, (float_mask,)),
    ]
    return "NumPy, regression, (256, 50) masked", steps


def _prepare_ratings(call: Any, mask: Any) -> Any:
    from arraylosses._call import prepare

    names = ("observed_ratings", "predicted_ratings")
    return prepare(
        call.first, call.second, mask, "mean", names=names, first_is_rating=True
    )


def _torch_eager(loss_name: str) -> tuple[str, list[Step]]:
    import torch

    import arraylosses
    from arraylosses._call import prepare

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(BATCH, generator=generator)
    second = torch.randn(BATCH, generator=generator)
    ours = getattr(arraylosses, f"{loss_name}_loss")
    idiom = idioms.torch_idioms()[loss_name]
    difference = second - first
    steps: list[Step] = [
        (f"ours: {loss_name}_loss", ours, (first, second)),
        ("idiom", idiom, (first, second)),
        (
            "ours: prepare (dispatch and checks)",
            _prepare_pair,
            (prepare, first, second),
        ),
    ]
    if loss_name == "hinge":
        steps += [
            ("both: n - p", torch.sub, (second, first)),
            ("both: + 1", torch.add, (difference, 1.0)),
            ("ours: relu, in place", torch.relu_, (difference.clone(),)),
            ("idiom: clamp(·, 0)", torch.clamp, (difference, 0.0)),
            ("both: mean", torch.mean, (difference,)),
        ]
    else:  # logistic: observations of ±1
        observed = torch.where(first > 0, 1.0, -1.0)
        steps[0] = (f"ours: {loss_name}_loss", ours, (observed, second))
        steps[1] = ("idiom", idiom, (observed, second))
        positive = torch.clamp(observed, 0, 1)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        steps += [
            ("both: clamp(y, 0, 1)", torch.clamp, (observed, 0.0, 1.0)),
            ("both: binary cross-entropy, mean", bce, (second, positive)),
        ]
    return f"PyTorch eager, {loss_name}, 256", steps


def _prepare_pair(prepare: Fn, first: Any, second: Any) -> Any:
    return prepare(first, second, None, "mean", names=("first", "second"))


def _torch_compiled() -> tuple[str, list[Step]]:
    import torch

    from arraylosses import hinge_loss

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(BATCH, generator=generator)
    second = torch.randn(BATCH, generator=generator)
    hinge_loss(first, second)  # resolve the namespace eagerly, as run.py does

    def compile_(fn: Fn) -> Fn:
        compiled: Fn = torch.compile(fn, dynamic=False)
        compiled(first, second)
        return compiled

    steps: list[Step] = [
        ("ours: hinge_loss", compile_(hinge_loss), (first, second)),
        ("idiom", compile_(idioms.torch_idioms()["hinge"]), (first, second)),
        ("one pass, sum(a + b)", compile_(idioms.torch_floor), (first, second)),
    ]
    return "torch.compile, hinge, 256", steps


CASES: dict[str, Callable[[], tuple[str, list[Step]]]] = {
    "numpy": _numpy_masked_regression,
    "torch-hinge": lambda: _torch_eager("hinge"),
    "torch-logistic": lambda: _torch_eager("logistic"),
    "torch-compile": _torch_compiled,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="folder for breakdown.md (default: benchmarks/results)",
    )
    options = parser.parse_args(argv)
    plan = harness.QUICK if options.quick else harness.FULL
    sections = []
    for make in CASES.values():
        title, steps = make()
        timing = harness.interleave([(fn, args) for _, fn, args in steps], plan)
        rows = [
            f"| {label} | {timing.median_us(index):.2f} |"
            for index, (label, _, _) in enumerate(steps)
        ]
        table = "\n".join(["| step | median µs |", "|---|---:|", *rows])
        sections.append(f"## {title}\n\n{table}\n\nRounds: {timing.rounds}.\n")
    markdown = "\n".join(sections)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "breakdown.md").write_text(markdown, encoding="utf-8")
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
