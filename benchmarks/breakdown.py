#!/usr/bin/env python3
"""Where the time goes in cells that miss their target or sit near it: a profile, step by step.

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
import run

Fn = Callable[..., Any]
Step = tuple[str, Fn, tuple[Any, ...]]

HERE = Path(__file__).resolve().parent
BATCH, SEQUENCE = 256, 50


def _numpy_masked_regression() -> tuple[str, list[Step]]:
    import numpy as np

    from arraylosses import regression_loss

    rng = np.random.default_rng(0)
    observed = rng.integers(1, 6, size=(BATCH, SEQUENCE)).astype(np.float32)
    predicted = rng.uniform(1.0, 5.0, size=(BATCH, SEQUENCE)).astype(np.float32)
    lengths = rng.integers(1, SEQUENCE + 1, size=BATCH)
    mask = np.arange(SEQUENCE)[None, :] < lengths[:, None]
    loss = (predicted - observed) ** 2
    # ours writes into the loss: a copy of its own, which the steps may overwrite
    # again and again to the same bits (a product by the same 0 or 1)
    ours_loss = loss.copy()
    loss_bits = ours_loss.view(np.uint32)
    mask_bits = mask.astype(np.uint32)
    float_mask = mask.astype(np.float32)
    prepare = run.boundary("regression")
    call = prepare(observed, predicted, mask)
    backend = call.backend
    idiom = idioms.numpy_idioms()["regression"]
    steps: list[Step] = [
        ("ours: regression_loss", regression_loss, (observed, predicted, mask)),
        ("idiom", idiom, (observed, predicted, mask)),
        ("both: ŷ - y", np.subtract, (predicted, observed)),
        ("both: its square", np.square, (loss,)),
        ("ours: prepare (dispatch and checks)", prepare, (observed, predicted, mask)),
        ("ours: mask as uint32", mask.astype, (np.uint32,)),
        (
            "ours: loss bits × mask, in place",
            np.multiply,
            (loss_bits, mask_bits, loss_bits),
        ),
        ("ours: sum of the kept terms", backend.sum, (ours_loss,)),
        ("ours: count of the mask", backend.count, (mask, loss.dtype)),
        ("ours: finish (the four above, and the division)", call.finish, (ours_loss,)),
        ("idiom: mask as float32", mask.astype, (np.float32,)),
        ("idiom: loss × mask", np.multiply, (loss, float_mask)),
        ("idiom: sum of the product", np.ndarray.sum, (loss,)),
        ("idiom: sum of the float mask", np.ndarray.sum, (float_mask,)),
    ]
    return "NumPy, regression, (256, 50) masked", steps


def _torch_eager(loss_name: str) -> tuple[str, list[Step]]:
    import torch

    import arraylosses
    from arraylosses import _torch

    generator = torch.Generator().manual_seed(0)
    predictions = torch.randn(BATCH, generator=generator)
    if loss_name == "poisson":  # counts of 1 to 5 at positive rates, as run.py has
        observed = torch.randint(1, 6, (BATCH,), generator=generator).float()
        predicted = predictions.abs() + 0.5
    else:  # logistic: observations of ±1
        observed = torch.where(predictions > 0, 1.0, -1.0)
        predicted = torch.randn(BATCH, generator=generator)
    ours = getattr(arraylosses, f"{loss_name}_loss")
    idiom = idioms.torch_idioms()[loss_name]
    prepare = run.boundary(loss_name)
    call = prepare(observed, predicted)
    steps: list[Step] = [
        (f"ours: {loss_name}_loss", ours, (observed, predicted)),
        ("idiom", idiom, (observed, predicted)),
        ("ours: prepare (dispatch and checks)", prepare, (observed, predicted)),
    ]
    # the steps' own functions, closures over the modules imported above: an import
    # inside a timed function would add its lookup to the step

    def ours_poisson_terms(predicted: Any, observed: Any) -> Any:
        return _torch.subtract_product(predicted, observed, torch.log(predicted))

    def idiom_poisson_terms(predicted: Any, observed: Any) -> Any:
        return predicted - observed * torch.log(predicted)

    def ours_cross_entropy_mean(predicted: Any, positive: Any) -> Any:
        count = _torch._divisor_of_mean(predicted, predicted.numel())
        summed = torch.binary_cross_entropy_with_logits(
            predicted, positive, None, None, 2
        )
        return summed.div_(count)

    if loss_name == "poisson":
        loss = torch.log(predicted)
        steps += [
            ("both: log ŷ", torch.log, (predicted,)),
            (
                "ours: log ŷ, then ŷ - y · log ŷ in one addcmul into its buffer",
                ours_poisson_terms,
                (predicted, observed),
            ),
            (
                "idiom: log ŷ, then ŷ - y · log ŷ",
                idiom_poisson_terms,
                (predicted, observed),
            ),
            ("ours: mean, a sum ÷ a count made once", _torch.mean, (loss,)),
            ("idiom: torch.mean (a sum ÷ a count made each call)", torch.mean, (loss,)),
            ("ours: finish (the mean, with its Python)", call.finish, (loss,)),
        ]
    else:
        positive = torch.clamp(observed, 0, 1)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        steps += [
            ("both: clamp(y, 0, 1)", torch.clamp, (observed, 0, 1)),
            (
                "ours: ATen's binary cross-entropy, summed, ÷ a count made once",
                ours_cross_entropy_mean,
                (predicted, positive),
            ),
            ("idiom: F.binary_cross_entropy_with_logits", bce, (predicted, positive)),
            (
                "ours: the fused call after prepare (clamp, cross-entropy, its Python)",
                call.fused,
                ("logistic",),
            ),
        ]
    return f"PyTorch eager, {loss_name}, 256", steps


def _torch_compiled() -> tuple[str, list[Step]]:
    import torch

    from arraylosses import hinge_loss

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(BATCH, generator=generator)
    second = torch.randn(BATCH, generator=generator)
    hinge_loss(first, second)  # resolve the namespace eagerly, as run.py does
    idiom = idioms.torch_idioms()["hinge"]

    def compile_(fn: Fn) -> Fn:
        compiled: Fn = torch.compile(fn, dynamic=False)
        compiled(first, second)
        return compiled

    steps: list[Step] = [
        ("ours: hinge_loss", compile_(hinge_loss), (first, second)),
        ("idiom", compile_(idiom), (first, second)),
        ("one pass, sum(a + b)", compile_(idioms.torch_floor), (first, second)),
    ]
    # Dynamo's check of the guards on each call, alone (through a debugging hook of
    # torch._dynamo: left out where this version of PyTorch lacks it)
    for label, fn in (("ours", hinge_loss), ("idiom", idiom)):
        check = _guard_check(fn, first, second)
        if check is not None:
            steps.append((f"{label}: Dynamo's guard check", check, ()))
    return "torch.compile, hinge, 256", steps


def _guard_check(fn: Fn, first: Any, second: Any) -> Fn | None:
    import inspect

    try:
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list

        manager = _debug_get_cache_entry_list(fn.__code__)[0].guard_manager
    except (ImportError, AttributeError, IndexError):
        return None
    arguments = inspect.signature(fn).bind(first, second)
    arguments.apply_defaults()
    frame_locals = dict(arguments.arguments)
    # a closure's free variables are locals of its frame too
    cells = fn.__closure__ or ()
    frame_locals.update(
        zip(
            fn.__code__.co_freevars, (cell.cell_contents for cell in cells), strict=True
        )
    )
    if not manager.check(frame_locals):
        return None
    return lambda: manager.check(frame_locals)


CASES: dict[str, Callable[[], tuple[str, list[Step]]]] = {
    "numpy": _numpy_masked_regression,
    "torch-poisson": lambda: _torch_eager("poisson"),
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
