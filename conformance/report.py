"""Rows, the tables printed from them, and the JSON report."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .gradients import BY_AUTOGRAD, CLOSED_FORM

__all__ = ["Row", "describe", "print_report", "worst_pair", "write_json"]


@dataclass
class Row:
    """One comparison: a case on one backend, against one reference."""

    backend: str  # "numpy", "torch:cuda", "reference" (checks of the references), ...
    loss: str  # the public function name
    options: str  # "margin=0.5", "log_input=True" or ""
    dtype: str
    shape: str
    mask: str
    reduction: str
    kind: str  # value, grad, peer:<name>, deviation, check:fd, check:<peer>, training
    reference_name: (
        str  # what "reference" is: "spotlight formula", "torch autograd", ...
    )
    ours: str
    reference: str
    error: float
    tol: float
    passed: bool
    mode: str = "eager"  # eager, jit
    note: str = ""
    spotlight: str = ""  # deviation rows: Spotlight's value beside ours
    # how ours was differentiated: "autograd" (the library's), "closed form"
    # (arraylosses.value_and_grad); on a value row, whose value it is; "" otherwise
    gradient: str = ""

    @property
    def case(self) -> str:
        options = f"({self.options})" if self.options else ""
        return (
            f"{self.loss}{options} on {self.backend} {self.dtype} "
            f"shape={self.shape} mask={self.mask} reduction={self.reduction} "
            f"{self.kind}"
            + (f" ({self.gradient})" if self.gradient else "")
            + (f" [{self.mode}]" if self.mode != "eager" else "")
        )


def describe(value: Any) -> str:
    """A short text for a number or an array."""
    if isinstance(value, str):
        return value
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.9g}"
    return f"array{array.shape}"


def worst_pair(ours: Any, reference: Any) -> tuple[str, str]:
    """Ours and the reference at the element where they differ most."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.shape != reference.shape:
        return f"shape {ours.shape}", f"shape {reference.shape}"
    if ours.ndim == 0:
        return describe(ours), describe(reference)
    if ours.size == 0:
        return "[]", "[]"
    with np.errstate(invalid="ignore"):
        difference = np.abs(ours - reference)
    difference = np.where(np.isnan(difference), np.inf, difference)
    index = np.unravel_index(int(np.argmax(difference)), ours.shape)
    where = "[" + ", ".join(str(int(i)) for i in index) + "]"
    return (
        f"{where} {float(ours[index]):.9g}",
        f"{where} {float(reference[index]):.9g}",
    )


def _fmt(error: float) -> str:
    if error is None or (isinstance(error, float) and math.isnan(error)):
        return "-"
    if math.isinf(error):
        return "inf"
    return f"{error:.1e}"


_SHORT = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64"}


def _worst(members: Sequence[Row]) -> str:
    """The error of the row closest to its tolerance, with its dtype."""
    if not members:
        return "-"
    row = max(members, key=lambda r: r.error / r.tol)
    return f"{_fmt(row.error)} {_SHORT.get(row.dtype, row.dtype)}"


_GRADIENTS = (BY_AUTOGRAD, CLOSED_FORM)


def _is_grad(row: Row, method: str) -> bool:
    return row.kind == "grad" and row.gradient == method


def _is_value(row: Row) -> bool:
    # the reference's own gradients checked by finite differences are no value
    return row.kind not in {"grad", "check:fd"}


def _verdict(row: Row | None) -> str:
    if row is None:
        return "-"
    if row.passed:
        return "ok"
    return "FAIL"


def _table(
    out: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]], right: int = 1
) -> None:
    rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < right else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def print_report(
    rows: Sequence[Row], notes: Sequence[str], out: TextIO, *, verbose: bool = False
) -> None:
    """The summary tables, the deviations, the failures and the closing line."""
    out.write("\n== Conformance: backend x loss ==\n")
    out.write(
        "worst: the largest relative error (tolerances.py), taken where it comes "
        "closest to its dtype's tolerance\n"
    )
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.backend, row.loss].append(row)
    table = []
    for (backend, loss), members in groups.items():
        values = [r for r in members if _is_value(r) and r.tol > 0]
        table.append(
            [
                backend,
                loss,
                str(len(members)),
                str(sum(r.passed for r in members)),
                str(sum(not r.passed for r in members)),
                _worst(values),
                *(
                    _worst([r for r in members if _is_grad(r, m) and r.tol > 0])
                    for m in _GRADIENTS
                ),
            ]
        )
    _table(
        out,
        [
            "backend",
            "loss",
            "cases",
            "passed",
            "failed",
            "worst value",
            *(f"worst grad ({m})" for m in _GRADIENTS),
        ],
        table,
        right=2,
    )

    out.write("\n== Worst relative error per backend x dtype (value, gradient) ==\n")
    by_dtype: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.kind in {"value", "grad"} or row.kind.startswith("peer:"):
            by_dtype[row.backend, row.dtype].append(row)
    _table(
        out,
        [
            "backend",
            "dtype",
            "cases",
            "tolerance",
            "worst value",
            *(f"worst grad ({m})" for m in _GRADIENTS),
        ],
        (
            [
                backend,
                dtype,
                str(len(members)),
                _fmt(members[0].tol),
                _fmt(max((r.error for r in members if _is_value(r)), default=math.nan)),
                *(
                    _fmt(
                        max(
                            (r.error for r in members if _is_grad(r, m)),
                            default=math.nan,
                        )
                    )
                    for m in _GRADIENTS
                ),
            ]
            for (backend, dtype), members in by_dtype.items()
        ),
        right=2,
    )

    deviations = [r for r in rows if r.kind in {"deviation", "contract"}]
    if deviations:
        out.write(
            "\n== Deliberate deviations from Spotlight (the migration guide), "
            "and the float16 promise (the backends guide) ==\n"
            "Spotlight: its own code path (references.spotlight_literal) or, where "
            "marked, a naive transcription; contract: the formula as the contract "
            "states it; one column per backend (ours must match the contract, and "
            "our gradients, autograd and closed form, central differences of it; "
            "the notes in the JSON report say what each gradient gave)\n"
        )
        backends = list(dict.fromkeys(r.backend for r in deviations))
        cells: dict[tuple[str, str, str], dict[str, Row]] = defaultdict(dict)
        for r in deviations:
            label = r.loss + (f"({r.options})" if r.options else "")
            cells[r.shape, r.dtype, label][r.backend] = r
        _table(
            out,
            ["deviation", "dtype", "loss", "Spotlight", "contract", *backends],
            (
                [
                    label,
                    dtype,
                    loss,
                    next(iter(by_backend.values())).spotlight,
                    next(iter(by_backend.values())).reference,
                    *(_verdict(by_backend.get(b)) for b in backends),
                ]
                for (label, dtype, loss), by_backend in cells.items()
            ),
            right=5,
        )

    training = [r for r in rows if r.kind == "training"]
    if training:
        out.write("\n== Drop-in training parity (torch, float32) ==\n")
        _table(
            out,
            [
                "loss",
                "model",
                "final loss ours",
                "final loss ref",
                "max |dtheta|",
                "tol",
                "ok",
            ],
            (
                [
                    r.loss + (f"({r.options})" if r.options else ""),
                    r.shape,
                    r.ours,
                    r.reference,
                    _fmt(r.error),
                    _fmt(r.tol),
                    "yes" if r.passed else "NO",
                ]
                for r in training
            ),
            right=2,
        )

    if notes:
        out.write("\n== Notes ==\n")
        out.writelines(f"- {note}\n" for note in notes)

    failures = [r for r in rows if not r.passed]
    if failures:
        out.write(f"\n== Failures ({len(failures)}) ==\n")
        shown = failures if verbose else failures[:200]
        for r in shown:
            out.write(
                f"FAIL {r.case}: ours={r.ours} reference={r.reference} "
                f"({r.reference_name}) rel err {_fmt(r.error)} tol {_fmt(r.tol)}"
                + (f" -- {r.note}" if r.note else "")
                + "\n"
            )
        if len(shown) < len(failures):
            out.write(f"... {len(failures) - len(shown)} more in the JSON report\n")
    passed = sum(r.passed for r in rows)
    out.write(f"\n{passed} passed, {len(failures)} failed\n")


def write_json(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    """Every row, with the run's settings and versions."""

    def clean(row: Row) -> dict[str, Any]:
        data = asdict(row)
        for key in ("error", "tol"):
            if not math.isfinite(data[key]):
                data[key] = str(data[key])
        return data

    summary = {
        **meta,
        "passed": sum(r.passed for r in rows),
        "failed": sum(not r.passed for r in rows),
    }
    head = json.dumps(summary, indent=1)[:-2]  # without the closing brace
    lines = ",\n".join(json.dumps(clean(r), separators=(",", ":")) for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{head},\n "rows": [\n{lines}\n]}}\n', encoding="utf-8")
