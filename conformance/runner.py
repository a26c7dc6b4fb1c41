"""Run the matrix on one backend, and the checks of the references themselves."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import cases, references
from .backends import Backend
from .gradients import (
    CLOSED_FORM,
    GRADIENTS,
    VJP,
    LossCall,
    finite_differences,
    loss_call,
    reference_gradients,
)
from .peers import Peer
from .report import Row, worst_pair
from .tolerances import FD_RTOL, RTOL, normwise_error

__all__ = ["reference_checks", "run_backend"]

VALUE_REFERENCE = "spotlight formula (float64)"


def _fingerprint(*arrays: np.ndarray | None) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for array in arrays:
        if array is None:
            digest.update(b"-")
        else:
            digest.update(str(array.dtype).encode() + str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class References:
    """Reference values, gradients and peer values, computed once per rounded input."""

    def __init__(self, gradient_method: str) -> None:
        self.gradient_method = gradient_method
        self._cache: dict[tuple[Any, ...], Any] = {}

    @property
    def gradient_name(self) -> str:
        """What the reference gradients are, for the rows' ``reference_name``."""
        if self.gradient_method == "autograd":
            return "torch autograd of the formula (float64)"
        return "central differences of the formula (float64)"

    def _get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def value(self, loss: cases.Loss, rounded: Sequence[Any], reduction: str) -> Any:
        return self._get(
            ("value", loss, reduction, _fingerprint(*rounded)),
            lambda: np.asarray(
                references.evaluate(loss.name, *rounded, reduction, loss.kwargs)
            ),
        )

    def grads(
        self,
        loss: cases.Loss,
        rounded: Sequence[Any],
        reduction: str,
        cotangent: np.ndarray | None,
    ) -> list[np.ndarray]:
        return self._get(
            ("grad", loss, reduction, _fingerprint(*rounded, cotangent)),
            lambda: reference_gradients(
                loss.name,
                rounded,
                reduction,
                loss.kwargs,
                loss.wrt,
                cotangent,
                method=self.gradient_method,
            ),
        )

    def peer(
        self, peer: Peer, loss: cases.Loss, rounded: Sequence[Any], reduction: str
    ) -> np.ndarray | None:
        return self._get(
            ("peer", peer.name, loss, reduction, _fingerprint(*rounded)),
            lambda: peer.compute(
                loss.name, rounded[0], rounded[1], reduction, loss.kwargs
            ),
        )


def _row(
    backend: Backend,
    loss: cases.Loss,
    dtype: str,
    shape: cases.Shape,
    mask: str,
    reduction: str,
    kind: str,
    reference_name: str,
    **fields: Any,
) -> Row:
    return Row(
        backend=backend.label if isinstance(backend, Backend) else backend,
        loss=loss.name,
        options=", ".join(f"{k}={v}" for k, v in loss.options),
        dtype=dtype,
        shape=str(shape),
        mask=mask,
        reduction=reduction,
        kind=kind,
        reference_name=reference_name,
        **fields,
    )


def _compare(
    ours: np.ndarray, reference: np.ndarray, floor: float, tol: float
) -> dict[str, Any]:
    error = normwise_error(ours, reference, floor)
    ours_text, reference_text = worst_pair(ours, reference)
    return {
        "ours": ours_text,
        "reference": reference_text,
        "error": error,
        "tol": tol,
        "passed": error <= tol,
    }


def _error_fields(error: Exception, tol: float) -> dict[str, Any]:
    return {
        "ours": f"raised {type(error).__name__}",
        "reference": "-",
        "error": float("inf"),
        "tol": tol,
        "passed": False,
        "note": f"{type(error).__name__}: {error}",
    }


def run_backend(
    backend: Backend,
    dtypes: Sequence[str],
    seed: int,
    peers: Sequence[Peer],
    refs: References,
    losses: Sequence[cases.Loss] = cases.LOSSES,
) -> list[Row]:
    """Every case of the matrix on ``backend``, in each of ``dtypes`` it has."""
    rows: list[Row] = []
    methods = GRADIENTS.get(backend.name, {})
    reference_name = VALUE_REFERENCE
    groups = [
        (loss, shape, mask)
        for loss in losses
        for shape in cases.SHAPES[loss.family]
        for mask in cases.MASKS
    ]
    for dtype in dtypes:
        tol = RTOL[dtype]
        for loss, shape, mask in groups:
            inputs = cases.inputs_for((loss, shape, mask), seed)
            arrays = [
                None
                if values is None
                else backend.array(values, dtype if inputs.kinds[name] else None)
                for name, values in (
                    ("first", inputs.first),
                    ("second", inputs.second),
                    ("mask", inputs.mask),
                )
            ]
            rounded = [None if a is None else backend.to_numpy(a) for a in arrays]
            for reduction in cases.REDUCTIONS:
                common = (backend, loss, dtype, shape, mask, reduction)
                cotangent = inputs.cotangent if reduction == "none" else None
                value_floor, grad_floor = cases.scales(
                    rounded, loss, shape.loss_shape, reduction, inputs.cotangent
                )
                reference = refs.value(loss, rounded, reduction)
                call = loss_call(loss, reduction)
                try:
                    result = call(*arrays)
                    ours = backend.to_numpy(result)
                except Exception as error:  # noqa: BLE001 - a failing call is a failing row
                    rows.append(
                        _row(
                            *common,
                            "value",
                            reference_name,
                            **_error_fields(error, tol),
                        )
                    )
                    continue
                fields = _compare(ours, reference, value_floor, tol)
                problems = _result_problems(backend, result, dtype, shape, reduction)
                if problems:
                    fields["passed"] = False
                    fields["note"] = problems
                rows.append(_row(*common, "value", reference_name, **fields))

                if mask == "none":
                    for peer in peers:
                        if not peer.available:
                            continue
                        value = refs.peer(peer, loss, rounded, reduction)
                        if value is not None:
                            rows.append(
                                _row(
                                    *common,
                                    f"peer:{peer.name}",
                                    f"{peer.name} (float64)",
                                    **_compare(ours, value, value_floor, tol),
                                )
                            )

                for method, vjp in methods.items():
                    rows.extend(
                        _gradient_rows(
                            common,
                            (method, vjp),
                            call,
                            arrays,
                            rounded,
                            cotangent,
                            refs,
                            (value_floor, grad_floor),
                        )
                    )
    if backend.name == "jax":
        rows.extend(_jax_jit_subset(backend, dtypes, seed, refs, losses))
    return rows


def _gradient_rows(
    common: tuple[Any, ...],
    method_and_vjp: tuple[str, VJP],
    call: LossCall,
    arrays: Sequence[Any],
    rounded: Sequence[np.ndarray | None],
    cotangent: np.ndarray | None,
    refs: References,
    floors: tuple[float, float],
    *,
    jit: bool = False,
) -> list[Row]:
    """One method's gradient row, after a row for its value where that is its own.

    The closed form's value of a reduced loss is value_and_grad's own; under jit
    the value is the jitted function's. Otherwise the value is the loss's, which
    its value row checks already.
    """
    backend, loss, dtype, _, _, reduction = common
    method, vjp = method_and_vjp
    value_floor, grad_floor = floors
    tol = RTOL[dtype]
    extra = {"gradient": method, "mode": "jit" if jit else "eager"}
    try:
        value, grads = vjp(backend, call, arrays, loss.wrt, cotangent, dtype, jit=jit)
    except Exception as error:  # noqa: BLE001 - a failing call is a failing row
        return [
            _row(
                *common,
                "grad",
                refs.gradient_name,
                **extra,
                **_error_fields(error, tol),
            )
        ]
    rows = []
    if jit or (method == CLOSED_FORM and reduction != "none"):
        reference = refs.value(loss, rounded, reduction)
        rows.append(
            _row(
                *common,
                "value",
                VALUE_REFERENCE,
                **extra,
                **_compare(value, reference, value_floor, tol),
            )
        )
    expected = refs.grads(loss, rounded, reduction, cotangent)
    rows.append(
        _row(
            *common,
            "grad",
            refs.gradient_name,
            **extra,
            **_compare_grads(grads, expected, grad_floor, tol),
        )
    )
    return rows


def _compare_grads(
    grads: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    floor: float,
    tol: float,
) -> dict[str, Any]:
    """The worst of the per-argument comparisons (first, then second)."""
    worst: dict[str, Any] | None = None
    for name, ours, reference in zip(
        ("d/dfirst", "d/dsecond")[-len(grads) :], grads, expected, strict=True
    ):
        fields = _compare(ours, reference, floor, tol)
        fields["ours"] = f"{name}{fields['ours']}"
        fields["reference"] = f"{name}{fields['reference']}"
        if worst is None or fields["error"] > worst["error"]:
            worst = fields
    assert worst is not None
    return worst


def _result_problems(
    backend: Backend, result: Any, dtype: str, shape: cases.Shape, reduction: str
) -> str:
    problems = []
    expected_shape = shape.loss_shape if reduction == "none" else ()
    if tuple(result.shape) != expected_shape:
        problems.append(
            f"result shape {tuple(result.shape)}, expected {expected_shape}"
        )
    if backend.dtype_name(result) != dtype:
        problems.append(f"result dtype {result.dtype}, expected {dtype}")
    return "; ".join(problems)


def _jax_jit_subset(
    backend: Backend,
    dtypes: Sequence[str],
    seed: int,
    refs: References,
    losses: Sequence[cases.Loss],
) -> list[Row]:
    """Value and gradient under jax.jit by each method (autograd, closed form), in
    float32 (or the first dtype asked for)."""
    rows: list[Row] = []
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    for loss in losses:
        shape = next(s for s in cases.SHAPES[loss.family] if s.label == "sequence")
        mask = "float"
        inputs = cases.inputs_for((loss, shape, mask), seed)
        arrays = [
            backend.array(inputs.first, dtype if inputs.kinds["first"] else None),
            backend.array(inputs.second, dtype),
            backend.array(inputs.mask, dtype),
        ]
        rounded = [backend.to_numpy(a) for a in arrays]
        for reduction in ("mean", "none"):
            common = (backend, loss, dtype, shape, mask, reduction)
            cotangent = inputs.cotangent if reduction == "none" else None
            floors = cases.scales(
                rounded, loss, shape.loss_shape, reduction, inputs.cotangent
            )
            for method_and_vjp in GRADIENTS["jax"].items():
                rows.extend(
                    _gradient_rows(
                        common,
                        method_and_vjp,
                        loss_call(loss, reduction),
                        arrays,
                        rounded,
                        cotangent,
                        refs,
                        floors,
                        jit=True,
                    )
                )
    return rows


def reference_checks(
    seed: int,
    peers: Sequence[Peer],
    refs: References,
    losses: Sequence[cases.Loss] = cases.LOSSES,
    *,
    finite_difference_check: bool = True,
) -> list[Row]:
    """Check the references against each other, in float64, before trusting them.

    The formulas against each peer (unmasked), and torch autograd of the
    formulas against central differences, on every case of the matrix.
    """
    rows: list[Row] = []
    tol = RTOL["float64"]
    for loss in losses:
        for shape in cases.SHAPES[loss.family]:
            for mask in cases.MASKS:
                inputs = cases.inputs_for((loss, shape, mask), seed)
                args = [inputs.first, inputs.second, inputs.mask]
                for reduction in cases.REDUCTIONS:
                    common = (
                        "reference (self-check)",
                        loss,
                        "float64",
                        shape,
                        mask,
                        reduction,
                    )
                    cotangent = inputs.cotangent if reduction == "none" else None
                    value_floor, grad_floor = cases.scales(
                        args, loss, shape.loss_shape, reduction, inputs.cotangent
                    )
                    formula = refs.value(loss, args, reduction)
                    if mask == "none":
                        for peer in peers:
                            value = (
                                refs.peer(peer, loss, args, reduction)
                                if peer.available
                                else None
                            )
                            if value is not None:
                                rows.append(
                                    _row(
                                        *common,
                                        f"check:{peer.name}",
                                        f"{peer.name} (float64)",
                                        **_compare(formula, value, value_floor, tol),
                                    )
                                )
                    if finite_difference_check and refs.gradient_method == "autograd":
                        autograd = refs.grads(loss, args, reduction, cotangent)
                        differences = finite_differences(
                            loss.name, args, reduction, loss.kwargs, loss.wrt, cotangent
                        )
                        fields = _compare_grads(
                            autograd, differences, grad_floor, FD_RTOL
                        )
                        rows.append(
                            _row(
                                *common,
                                "check:fd",
                                "central differences (float64)",
                                **fields,
                            )
                        )
    return rows
