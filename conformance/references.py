"""Independent references: the contract's formulas, written plainly, in float64.

Each loss is the README's table transcribed as it reads, with the naive sigmoid
``1 / (1 + exp(-x))`` and no rearrangement for stability: float64 inputs of the
size the matrix uses cannot overflow it. Nothing here imports arraylosses or
shares a code path with it: the formulas are written once over a small table of
elementwise functions (:data:`NUMPY_OPS`, or :func:`torch_ops` so that torch
autograd can differentiate the very same expression for the gradient
reference).

:func:`spotlight_literal` transcribes Spotlight's own code path (its squeeze,
its ``loss * mask`` and ``loss.sum() / mask.sum()``, its unguarded
``y * log(yhat)``) and is used only to show Spotlight's value beside ours in the
deviations table.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = [
    "FORMULAS",
    "NUMPY_OPS",
    "evaluate",
    "spotlight_literal",
    "torch_ops",
]

Array = Any

NUMPY_OPS = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    abs=np.abs,
    relu=lambda x: np.maximum(x, 0.0),
    clip=np.clip,
    max0=lambda x: np.max(x, axis=0),
    sum=np.sum,
    where=np.where,
    broadcast_to=np.broadcast_to,
    size=lambda x: x.size,
)


def torch_ops() -> SimpleNamespace:
    """The same table from torch, so that autograd can differentiate the formulas."""
    import torch  # noqa: PLC0415 - optional: only for the gradient reference

    return SimpleNamespace(
        exp=torch.exp,
        log=torch.log,
        log1p=torch.log1p,
        abs=torch.abs,
        relu=lambda x: torch.clamp(x, min=0.0),
        clip=torch.clamp,
        max0=lambda x: torch.amax(x, dim=0),
        sum=torch.sum,
        where=torch.where,
        broadcast_to=torch.broadcast_to,
        size=lambda x: x.numel(),
    )


# --- the seven elementwise losses, as the README's table states them ----------


def _sigmoid(x: Array, ops: SimpleNamespace) -> Array:
    return 1.0 / (1.0 + ops.exp(-x))


def pointwise(p: Array, n: Array, ops: SimpleNamespace) -> Array:
    """(1 - σ(p)) + σ(n)."""
    return (1.0 - _sigmoid(p, ops)) + _sigmoid(n, ops)


def bpr(p: Array, n: Array, ops: SimpleNamespace) -> Array:
    """1 - σ(p - n)."""
    return 1.0 - _sigmoid(p - n, ops)


def hinge(p: Array, n: Array, ops: SimpleNamespace, margin: float = 1.0) -> Array:
    """max(n - p + margin, 0)."""
    return ops.relu(n - p + margin)


def adaptive_hinge(
    p: Array, negatives: Array, ops: SimpleNamespace, margin: float = 1.0
) -> Array:
    """hinge(p, max over axis 0 of the negatives), never squeezed."""
    return hinge(p, ops.max0(negatives), ops, margin)


def regression(y: Array, yhat: Array, ops: SimpleNamespace) -> Array:  # noqa: ARG001
    """(y - yhat)²."""
    return (y - yhat) ** 2


def poisson(
    y: Array, yhat: Array, ops: SimpleNamespace, log_input: bool = False
) -> Array:
    """yhat - y·log(yhat); with log_input, exp(x) - y·x."""
    if log_input:
        return ops.exp(yhat) - y * yhat
    return yhat - y * ops.log(yhat)


def logistic(y: Array, x: Array, ops: SimpleNamespace) -> Array:
    """z = clip(y, 0, 1); max(x, 0) - x·z + log1p(exp(-|x|))."""
    z = ops.clip(y, 0.0, 1.0)
    return ops.relu(x) - x * z + ops.log1p(ops.exp(-ops.abs(x)))


FORMULAS: dict[str, Callable[..., Array]] = {
    "pointwise_loss": pointwise,
    "bpr_loss": bpr,
    "hinge_loss": hinge,
    "adaptive_hinge_loss": adaptive_hinge,
    "regression_loss": regression,
    "poisson_loss": poisson,
    "logistic_loss": logistic,
}


def reduce(
    loss: Array, mask: Array | None, reduction: str, ops: SimpleNamespace
) -> Array:
    """The contract's reduction: sum(L·w) / sum(w), w counted at L's shape."""
    if mask is not None:
        mask = ops.broadcast_to(mask, loss.shape)
        loss = loss * mask
    if reduction == "none":
        return loss
    total = ops.sum(loss)
    if reduction == "sum":
        return total
    count = ops.size(loss) if mask is None else ops.sum(mask)
    if count == 0:
        # The contract's deviation: an all-zero mask gives 0 with zero gradients
        # (Spotlight: 0 / 0 = NaN; shown in the deviations table).
        return total * 0.0
    return total / count


def evaluate(
    name: str,
    first: Array,
    second: Array,
    mask: Array | None,
    reduction: str,
    options: dict[str, Any],
    ops: SimpleNamespace = NUMPY_OPS,
) -> Array:
    """The reference value of loss ``name`` (float64 in, float64 out)."""
    loss = FORMULAS[name](first, second, ops, **options)
    return reduce(loss, mask, reduction, ops)


def spotlight_literal(
    name: str,
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray | None,
    options: dict[str, Any],
) -> float:
    """Spotlight's own code path in NumPy float64, for the deviations table only.

    Its ``adaptive_hinge_loss`` squeezes the maximum of the negatives, its masked
    mean is ``(loss * mask).sum() / mask.sum()``, its ``poisson_loss`` computes
    ``y * log(yhat)`` unguarded; sigmoids and logs are evaluated as written, with
    NumPy's warnings silenced (the warnings are what the deviation is about).
    """
    with np.errstate(all="ignore"):
        if name == "adaptive_hinge_loss":
            highest = np.max(second, axis=0).squeeze()
            loss = np.maximum(highest - first + options.get("margin", 1.0), 0.0)
        elif name == "poisson_loss" and not options.get("log_input", False):
            loss = second - first * np.log(second)
        else:
            loss = FORMULAS[name](first, second, NUMPY_OPS, **options)
        if mask is not None:
            weights = np.asarray(mask, dtype=np.float64)
            return float(np.sum(loss * weights) / np.sum(weights))
        return float(np.mean(loss))
