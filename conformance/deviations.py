"""The contract's deliberate deviations from Spotlight, each a row of its own.

The migration guide lists where arraylosses improves on Spotlight on purpose.
Each becomes one row per loss it touches and per backend, in float32, showing
Spotlight's value (its own code path, transcribed in
:func:`references.spotlight_literal`) beside ours and the contract's. The
gradients are checked too, by every method the backend has (its autograd, and
the closed form of :func:`arraylosses.value_and_grad` on every backend), against
central differences of the float64 reference (the naive formula's own autograd
meets 0·inf at exactly these inputs). The two methods differ on purpose at a
masked-out element whose loss is NaN or inf: autograd gives 0·NaN = NaN there
(reported, not checked: the contract promises the value), the closed form
exactly 0 (checked: value_and_grad promises it).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from . import cases, references
from .backends import Backend
from .gradients import CLOSED_FORM, GRADIENTS, LossCall, finite_differences, loss_call
from .report import Row, describe, worst_pair
from .tolerances import RTOL, normwise_error

__all__ = ["deviation_rows"]

DTYPE = "float32"

ONE_PER_LOSS = tuple(loss for loss in cases.LOSSES if not loss.options)
OVERFLOW_LOSSES = ("pointwise_loss", "bpr_loss", "logistic_loss")


def _batch(loss: cases.Loss) -> cases.Shape:
    return cases.SHAPES[loss.family][0]


class _Deviation:
    """Runs one deviation case on one backend and builds its row."""

    def __init__(
        self, backend: Backend, dtype: str = DTYPE, kind: str = "deviation"
    ) -> None:
        self.backend = backend
        self.dtype = dtype
        self.kind = kind
        self.tol = RTOL[dtype]

    def arrays(
        self, first: np.ndarray, second: np.ndarray, mask: np.ndarray | None
    ) -> list[Any]:
        first_dtype = self.dtype if first.dtype.kind == "f" else None
        return [
            self.backend.array(first, first_dtype),
            self.backend.array(second, self.dtype),
            None if mask is None else self.backend.array(mask),
        ]

    def row(self, loss: cases.Loss, label: str, **fields: Any) -> Row:
        return Row(
            backend=self.backend.label,
            loss=loss.name,
            options=", ".join(f"{key}={value}" for key, value in loss.options),
            dtype=self.dtype,
            shape=label,
            mask=fields.pop("mask", "-"),
            reduction="mean",
            kind=self.kind,
            reference_name="the contract (the migration and backends guides)",
            tol=self.tol,
            **fields,
        )

    def compare(
        self,
        loss: cases.Loss,
        label: str,
        inputs: tuple[np.ndarray, np.ndarray, np.ndarray | None],
        contract_inputs: tuple[np.ndarray, np.ndarray, np.ndarray | None],
        *,
        masked: np.ndarray | None = None,
        floor: float | None = None,
        warning_free: bool = False,
        mask_text: str = "-",
    ) -> Row:
        """Ours on ``inputs`` against the formula on ``contract_inputs``.

        ``masked`` marks the elements whose gradient is reported, not checked (the
        masked-out element itself). ``floor`` None: the usual value floor.
        ``warning_free``: any warning fails the row.
        """
        first, second, mask = inputs
        spotlight = references.spotlight_literal(
            loss.name, first, second, mask, loss.kwargs
        )
        arrays = self.arrays(first, second, mask)
        # the contract's value on the same float32-rounded inputs
        contract = [
            None if a is None else self.backend.to_numpy(a)
            for a in self.arrays(*contract_inputs)
        ]
        with np.errstate(all="ignore"):
            expected = np.asarray(
                references.evaluate(loss.name, *contract, "mean", loss.kwargs)
            )
        value_floor, grad_floor = cases.scales(
            contract, loss, _loss_shape(loss, first, second), "mean", np.ones(())
        )
        if floor is not None:
            value_floor = floor
        call = loss_call(loss)
        notes = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ours = self.backend.to_numpy(call(*arrays))
            except Exception as error:  # noqa: BLE001 - a failing call is a failing row
                return self.row(
                    loss,
                    label,
                    spotlight=describe(spotlight),
                    ours=f"raised {type(error).__name__}",
                    reference=describe(expected),
                    error=float("inf"),
                    passed=False,
                    note=f"{type(error).__name__}: {error}",
                    mask=mask_text,
                )
        error = normwise_error(ours, expected, value_floor)
        passed = error <= self.tol
        if caught:
            # only the overflow row promises silence; log(0) = -inf at a masked-out
            # element is a true inf, and NumPy may say so
            passed = passed and not warning_free
            notes.append(
                "warned: " + "; ".join(sorted({str(w.message) for w in caught}))
            )
        grad_error, grad_passed = self.check_grads(
            loss, call, arrays, contract, (masked, grad_floor, warning_free), notes
        )
        error, passed = max(error, grad_error), passed and grad_passed
        ours_text, expected_text = worst_pair(ours, expected)
        return self.row(
            loss,
            label,
            spotlight=describe(spotlight),
            ours=ours_text,
            reference=expected_text,
            error=error,
            passed=passed,
            note="; ".join(notes),
            mask=mask_text,
        )

    def check_grads(
        self,
        loss: cases.Loss,
        call: LossCall,
        arrays: list[Any],
        contract: list[Any],
        how: tuple[np.ndarray | None, float, bool],
        notes: list[str],
    ) -> tuple[float, bool]:
        """Ours, by each method the backend has, against central differences.

        ``how`` is (masked, floor, warning_free) as :meth:`compare` takes them: at
        the masked-out element autograd's gradient is reported, not checked, and
        the closed form's must be exactly 0; a warning is noted, and fails the
        row where ``warning_free``.
        """
        masked, floor, warning_free = how
        methods = GRADIENTS.get(self.backend.name, {})
        if not methods:
            return 0.0, True
        wanted = finite_differences(
            loss.name, contract, "mean", loss.kwargs, loss.wrt, None
        )
        worst, passed = 0.0, True
        for method, vjp in methods.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    _, grads = vjp(
                        self.backend, call, arrays, loss.wrt, None, self.dtype
                    )
                except Exception as failure:  # noqa: BLE001 - a failing call fails the row
                    notes.append(
                        f"{method} gradient raised {type(failure).__name__}: {failure}"
                    )
                    worst, passed = math.inf, False
                    continue
            if caught:
                passed = passed and not warning_free
                said = "; ".join(sorted({str(w.message) for w in caught}))
                notes.append(f"{method} gradient warned: {said}")
            for index, ours, reference in zip(loss.wrt, grads, wanted, strict=True):
                name = f"{('d/dfirst', 'd/dsecond')[index]} ({method})"
                kept = np.ones(ours.shape, bool)
                if masked is not None:
                    kept = ~np.broadcast_to(masked, ours.shape)
                    if not self.masked_ok(name, method, ours[~kept], notes):
                        worst, passed = math.inf, False
                error = normwise_error(ours[kept], reference[kept], floor)
                worst = max(worst, error)
                if error > self.tol:
                    passed = False
                    notes.append(f"{name} off: err {error:.1e}")
        notes.append(f"gradients checked ({', '.join(methods)})")
        return worst, passed

    @staticmethod
    def masked_ok(name: str, method: str, leaked: np.ndarray, notes: list[str]) -> bool:
        """The gradient at the masked-out element: noted, and checked for the closed
        form, which promises exactly 0 where autograd meets 0·NaN or 0·inf."""
        exact_zero = bool(np.all(leaked == 0))
        if method == CLOSED_FORM:
            if exact_zero:
                notes.append(f"{name} at the masked-out element: 0, as promised")
            else:
                notes.append(
                    f"{name} at the masked-out element: {leaked.tolist()}, "
                    "expected exactly 0 (value_and_grad promises it)"
                )
            return exact_zero
        if not exact_zero:
            notes.append(
                f"{name} at the masked-out element: {leaked.tolist()} "
                "(reported, not checked: the contract promises the value)"
            )
        return True


def _loss_shape(
    loss: cases.Loss, first: np.ndarray, second: np.ndarray
) -> tuple[int, ...]:
    second_shape = second.shape[1:] if loss.family == "adaptive" else second.shape
    return tuple(np.broadcast_shapes(first.shape, second_shape))


def deviation_rows(backend: Backend, seed: int) -> list[Row]:
    """Every deviation row on ``backend``."""
    run = _Deviation(backend)
    rows: list[Row] = []

    # 1. An all-zero mask: 0 with zero gradients (Spotlight: 0 / 0 = NaN).
    for loss in ONE_PER_LOSS:
        inputs = cases.inputs_for((loss, _batch(loss), "zero"), seed)
        args = (inputs.first, inputs.second, inputs.mask)
        rows.append(
            run.compare(
                loss, "all-zero mask -> 0", args, args, floor=0.0, mask_text="zero"
            )
        )

    # 2. A masked-out element contributes exactly 0 even where L is NaN or inf.
    for loss in ONE_PER_LOSS:
        inputs = cases.inputs_for((loss, _batch(loss), "bool"), seed)
        first, second = inputs.first.copy(), inputs.second.copy()
        mask = inputs.mask.copy()
        mask[1] = False
        hidden = np.zeros(mask.shape, dtype=bool)
        hidden[1] = True
        if loss.name == "poisson_loss":  # a rate of 0 for a count of 3: L = inf
            first[1], second[1] = 3, 0.0
            label = "masked-out inf -> 0"
        elif loss.family == "explicit":
            second[1] = np.nan
            label = "masked-out NaN -> 0"
        else:
            first[1] = np.nan
            label = "masked-out NaN -> 0"
        rows.append(
            run.compare(
                loss,
                label,
                (first, second, mask),
                (inputs.first, inputs.second, mask),
                masked=hidden,
                mask_text="bool",
            )
        )

    # 3. adaptive_hinge_loss never squeezes a (B, 1) positive into (B, B).
    loss = next(item for item in ONE_PER_LOSS if item.name == "adaptive_hinge_loss")
    column = next(s for s in cases.SHAPES["adaptive"] if s.label == "column")
    inputs = cases.inputs_for((loss, column, "none"), seed)
    args = (inputs.first, inputs.second, None)
    row = run.compare(loss, "no squeeze of (B, 1)", args, args)
    row.spotlight += " over a (7, 7) outer product"
    rows.append(row)

    # 4. No overflow (no NumPy warning, a finite result) at |x| = 1e4 in float32.
    big = np.array([1e4, -1e4, 1e4, -1e4, 0.5, -2.0, 3.0])
    other = np.array([-1e4, 1e4, 1e4, -1e4, 1.0, 0.25, -1.0])
    for loss in ONE_PER_LOSS:
        if loss.name not in OVERFLOW_LOSSES:
            continue
        if loss.name == "logistic_loss":
            args = (np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0]), big, None)
        else:
            args = (big, other, None)
        row = run.compare(
            loss, "|x| = 1e4 float32, no overflow", args, args, warning_free=True
        )
        row.spotlight = _naive_float32(loss.name, *args[:2])
        rows.append(row)

    # 5. A broadcast into an outer product is refused (Spotlight broadcasts it).
    for loss in ONE_PER_LOSS:
        rng = np.random.default_rng([seed, 5])
        if loss.family == "explicit":
            first = rng.integers(1, 4, (7, 1)).astype(np.float64)
            second = rng.uniform(0.5, 3.0, (1, 5))
        else:
            first = rng.normal(size=(7, 1))
            second = rng.normal(size=(3, 1, 5) if loss.family == "adaptive" else (1, 5))
        rows.append(_refused(run, loss, first, second))

    # Not a deviation but a promise of the contract (section 2) that the same
    # table shows: float16 is computed in float32, so an intermediate beyond
    # float16's range (65504) does not overflow when the result fits.
    if "float16" in backend.dtypes:
        rows.extend(_half_rows(_Deviation(backend, "float16", kind="contract")))
    return rows


def _half_rows(run: _Deviation) -> list[Row]:
    rows = []
    small = np.array([0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 1.0])
    for loss in cases.LOSSES:
        if loss.label == "hinge_loss":  # n - p + 1 = 80001
            first, second = small.copy(), small + 1.0
            first[0], second[0] = -4e4, 4e4
        elif loss.label == "regression_loss":  # (y - yhat)**2 = 90000
            first, second = np.rint(np.abs(small)), np.abs(small) + 1.0
            first[0], second[0] = 0.0, 300.0
        elif loss.label == "poisson_loss(log_input=True)":  # exp(12) = 162755
            first, second = np.rint(np.abs(small)), small
            second[0] = 12.0
        else:
            continue
        args = (first, second, None)
        row = run.compare(loss, "float16 computed in float32", args, args)
        row.spotlight = _naive_float16(loss, first, second)
        rows.append(row)
    return rows


def _naive_float16(loss: cases.Loss, first: np.ndarray, second: np.ndarray) -> str:
    """The formula in float16 arithmetic throughout, as a float16 library would."""
    with np.errstate(all="ignore"):
        value = references.evaluate(
            loss.name,
            first.astype(np.float16),
            second.astype(np.float16),
            None,
            "mean",
            loss.kwargs,
        )
    return f"in float16: {describe(np.float16(value))}"


def _refused(
    run: _Deviation, loss: cases.Loss, first: np.ndarray, second: np.ndarray
) -> Row:
    spotlight = references.spotlight_literal(
        loss.name, first, second, None, loss.kwargs
    )
    arrays = run.arrays(first, second, None)
    try:
        result = run.backend.to_numpy(loss_call(loss)(*arrays))
    except ValueError as error:
        ours, passed, note = "ValueError", True, str(error)
    except Exception as error:  # noqa: BLE001
        ours, passed, note = (
            f"{type(error).__name__}",
            False,
            f"expected ValueError: {error}",
        )
    else:
        ours, passed, note = describe(result), False, "expected ValueError, got a value"
    shapes = f"{first.shape} with {second.shape}"
    return run.row(
        loss,
        "outer product refused",
        spotlight=f"{describe(spotlight)} over {shapes}",
        ours=ours,
        reference="ValueError",
        error=0.0 if passed else float("inf"),
        passed=passed,
        note=note,
    )


def _naive_float32(name: str, first: np.ndarray, second: np.ndarray) -> str:
    """The formula transcribed naively in float32 NumPy, and what NumPy says."""
    first, second = first.astype(np.float32), second.astype(np.float32)
    one = np.float32(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def sigmoid(x: np.ndarray) -> np.ndarray:
            return one / (one + np.exp(-x))

        if name == "pointwise_loss":
            value = np.mean((one - sigmoid(first)) + sigmoid(second))
        elif name == "bpr_loss":
            value = np.mean(one - sigmoid(first - second))
        else:  # logistic, as the log-likelihood reads: log(1 + e^x) - x z
            z = np.clip(first, 0, 1)
            value = np.mean(np.log(one + np.exp(second)) - second * z)
    said = sorted({str(w.message) for w in caught})
    return f"naive: {describe(value)}" + (f" ({'; '.join(said)})" if said else "")
