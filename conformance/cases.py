"""The matrix: which losses, shapes, masks and reductions, and their inputs.

Inputs are drawn in float64 from a seed and the case's own key, so every
backend and dtype sees the same numbers before its own rounding; the runner
then rounds them to the test dtype through the backend and evaluates the
reference on those rounded values, so that a tolerance measures only the
computation, never the rounding of the inputs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

__all__ = [
    "LOSSES",
    "MASKS",
    "REDUCTIONS",
    "Case",
    "Inputs",
    "Loss",
    "Shape",
    "inputs_for",
    "matrix",
    "scales",
]

# Kinks are kept this far (in float64) from every input: the hinge's
# n - p + margin = 0 and a tie for the largest negative, where the derivative
# is undefined. Rounding to bfloat16 moves inputs of size <= 8 by < 0.016.
KINK_GAP = 0.05


@dataclass(frozen=True)
class Loss:
    """One public loss with one set of options."""

    name: str
    family: str  # "implicit", "adaptive" or "explicit"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def label(self) -> str:
        extra = ", ".join(f"{key}={value}" for key, value in self.options)
        return f"{self.name}({extra})" if extra else self.name

    @property
    def wrt(self) -> tuple[int, ...]:
        """The arguments gradients are taken with respect to: the predictions."""
        return (1,) if self.family == "explicit" else (0, 1)


LOSSES = (
    Loss("pointwise_loss", "implicit"),
    Loss("bpr_loss", "implicit"),
    Loss("hinge_loss", "implicit"),
    Loss("hinge_loss", "implicit", (("margin", 0.5),)),
    Loss("adaptive_hinge_loss", "adaptive"),
    Loss("adaptive_hinge_loss", "adaptive", (("margin", 0.5),)),
    Loss("regression_loss", "explicit"),
    Loss("poisson_loss", "explicit"),
    Loss("poisson_loss", "explicit", (("log_input", True),)),
    Loss("logistic_loss", "explicit"),
)


@dataclass(frozen=True)
class Shape:
    """The shapes of the two array arguments; ``second`` includes k for adaptive."""

    label: str
    first: tuple[int, ...]
    second: tuple[int, ...]
    negatives_axis: bool = False

    @property
    def loss_shape(self) -> tuple[int, ...]:
        second = self.second[1:] if self.negatives_axis else self.second
        return tuple(np.broadcast_shapes(self.first, second))

    def __str__(self) -> str:
        return f"{self.label} {self.first}x{self.second}".replace(",)", ")")


SHAPES = {
    "implicit": (
        Shape("batch", (7,), (7,)),
        Shape("sequence", (7, 5), (7, 5)),
        Shape("one", (1,), (1,)),
        Shape("column", (7, 1), (7, 5)),
    ),
    "adaptive": (
        Shape("batch", (7,), (3, 7), True),
        Shape("sequence", (7, 5), (3, 7, 5), True),
        Shape("one", (1,), (3, 1), True),
        Shape("column", (7, 1), (3, 7, 1), True),
        Shape("k=1", (7,), (1, 7), True),
    ),
    "explicit": (
        Shape("batch", (7,), (7,)),
        Shape("sequence", (7, 5), (7, 5)),
        Shape("one", (1,), (1,)),
        # broadcasting, either way round: a rating per row against a sequence of
        # predictions, and a prediction per row against a sequence of ratings
        Shape("column", (7, 1), (7, 5)),
        Shape("predicted column", (7, 5), (7, 1)),
    ),
}

MASKS = ("none", "bool", "int", "float", "broadcast", "zero")
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class Case:
    """One cell of the matrix, before backend and dtype."""

    loss: Loss
    shape: Shape
    mask: str
    reduction: str

    @property
    def key(self) -> str:
        return f"{self.loss.label}|{self.shape.label}|{self.mask}"


@dataclass
class Inputs:
    """A case's float64 inputs; ``first`` is int64 where ratings are integer."""

    first: np.ndarray
    second: np.ndarray
    mask: np.ndarray | None
    cotangent: np.ndarray
    # dtype of each array in a backend: "float" (the test dtype) or None (as is)
    kinds: dict[str, str | None] = field(default_factory=dict)


def matrix(losses: tuple[Loss, ...] = LOSSES) -> list[Case]:
    """Every case: loss x shape x mask x reduction."""
    return [
        Case(loss, shape, mask, reduction)
        for loss in losses
        for shape in SHAPES[loss.family]
        for mask in MASKS
        for reduction in REDUCTIONS
    ]


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


@cache
def inputs_for(case_key: tuple[Loss, Shape, str], seed: int) -> Inputs:
    """The inputs of (loss, shape, mask): the same for every reduction and dtype."""
    loss, shape, mask_kind = case_key
    rng = _rng(seed, f"{loss.label}|{shape.label}|{mask_kind}")
    if loss.family == "explicit":
        first, second = _explicit(loss, shape, rng)
        first_kind = None if shape.label == "batch" else "float"
        if first_kind is None:  # integer ratings, converted by the loss itself
            first = first.astype(np.int64)
    else:
        first, second = _implicit(loss, shape, rng)
        first_kind = "float"
    mask, mask_kind_dtype = _mask(mask_kind, shape.loss_shape, rng)
    cotangent = rng.choice([-1.0, 0.5, 1.0, 1.5, 2.0], size=shape.loss_shape)
    return Inputs(
        first,
        second,
        mask,
        cotangent,
        {"first": first_kind, "second": "float", "mask": mask_kind_dtype},
    )


def _implicit(
    loss: Loss, shape: Shape, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    margin = loss.kwargs.get("margin", 1.0)
    for _ in range(1000):
        positive = rng.normal(0.0, 1.5, shape.first)
        negative = rng.normal(0.0, 1.5, shape.second)
        highest = negative
        if shape.negatives_axis:
            ordered = np.sort(negative, axis=0)
            if np.any(np.diff(ordered, axis=0) < KINK_GAP):
                continue
            highest = ordered[-1]
        if np.all(np.abs(highest - positive + margin) >= KINK_GAP):
            return positive, negative
    msg = f"no kink-free inputs for {loss.label} {shape}"
    raise RuntimeError(msg)


def _explicit(
    loss: Loss, shape: Shape, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if loss.name == "regression_loss":
        return (
            rng.integers(1, 6, shape.first).astype(np.float64),
            rng.uniform(0.5, 5.5, shape.second),
        )
    if loss.name == "poisson_loss":
        observed = rng.integers(0, 6, shape.first).astype(np.float64)
        if loss.kwargs.get("log_input", False):
            return observed, rng.uniform(-1.5, 1.6, shape.second)
        return observed, rng.uniform(0.2, 5.0, shape.second)
    # logistic: observations in {-1, +1}, or {0, 1} for the sequence shape
    labels = [0.0, 1.0] if shape.label == "sequence" else [-1.0, 1.0]
    return rng.choice(labels, size=shape.first), rng.normal(0.0, 2.0, shape.second)


def _mask(
    kind: str, loss_shape: tuple[int, ...], rng: np.random.Generator
) -> tuple[np.ndarray | None, str | None]:
    """The mask of ``kind`` and its dtype in a backend ("float" = the test dtype)."""
    if kind == "none":
        return None, None
    if kind == "zero":
        return np.zeros(loss_shape, dtype=bool), None
    if kind == "broadcast":
        if len(loss_shape) == 2 and loss_shape[1] > 1:  # noqa: PLR2004
            rows = rng.random((loss_shape[0], 1)) < 0.6  # noqa: PLR2004
            rows[0, 0] = True
            return rows, None  # a bool row mask, broadcast along the sequence
        return np.asarray(0.75), "float"  # a 0-d weight, covering every element
    if kind == "bool":
        mask = rng.random(loss_shape) < 0.7  # noqa: PLR2004
        mask.flat[0] = True
        return mask, None
    if kind == "int":
        mask = rng.integers(0, 4, loss_shape)
        mask.flat[0] = 2
        return mask.astype(np.int64), None
    # float weights in [0, 2), a fifth of them 0
    weights = rng.uniform(0.0, 2.0, loss_shape) * (rng.random(loss_shape) < 0.8)  # noqa: PLR2004
    weights.flat[0] = 1.25
    return weights, "float"


def scales(
    inputs_rounded: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    loss: Loss,
    loss_shape: tuple[int, ...],
    reduction: str,
    cotangent: np.ndarray,
) -> tuple[float, float]:
    """The value and gradient floors of :func:`tolerances.normwise_error`."""
    first, second, mask = inputs_rounded
    magnitudes = [1.0, float(loss.kwargs.get("margin", 1.0))]
    for values in (first, second):
        finite = np.abs(values[np.isfinite(values)])
        if finite.size:
            magnitudes.append(float(np.max(finite)))
    term_scale = max(magnitudes)
    weights = (
        np.ones(loss_shape)
        if mask is None
        else np.broadcast_to(np.asarray(mask, dtype=np.float64), loss_shape)
    )
    total = float(np.sum(np.abs(weights)))
    largest = float(np.max(np.abs(weights))) if weights.size else 0.0
    if reduction == "mean":
        value_weight = 1.0 if total > 0 else 0.0
        grad_weight = largest / total if total > 0 else 0.0
    elif reduction == "sum":
        value_weight, grad_weight = total, largest
    else:
        value_weight = largest
        grad_weight = (
            float(np.max(np.abs(weights * cotangent))) if weights.size else 0.0
        )
    return term_scale * value_weight, grad_weight
