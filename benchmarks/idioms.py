"""What arraylosses is measured against: the code users write by hand.

Two kinds of functions, each taking the loss's arrays positionally, then
``mask=None``, and returning a 0-d array:

* **idioms**: Spotlight's own PyTorch expressions (``spotlight/losses.py``),
  and the same expressions written with NumPy and with ``jax.numpy``. These
  are the baselines of the ratio tables.
* **memory floors**: one fused pass that reads both inputs once
  (``sum(a + b)``), the least work any loss over those inputs can do.

Spotlight's losses, for reference (``p``, ``n`` positive and negative
predictions, ``N`` stacked negatives, ``y`` observed, ``ŷ`` predicted)::

    pointwise  (1.0 - torch.sigmoid(p)) + torch.sigmoid(n)
    bpr        1.0 - torch.sigmoid(p - n)
    hinge      torch.clamp(n - p + 1.0, 0.0)
    adaptive   highest, _ = torch.max(N, 0); hinge(p, highest.squeeze(), mask)
    (then:     mask = mask.float(); loss = loss * mask; loss.sum() / mask.sum()
     or        loss.mean() without a mask)
    regression ((y - ŷ) ** 2).mean()
    poisson    (ŷ - y * torch.log(ŷ)).mean()
    logistic   F.binary_cross_entropy_with_logits(ŷ, torch.clamp(y, 0, 1))

Spotlight's explicit losses (regression, poisson, logistic) take no mask; for
the masked (batch, sequence) case their idioms end with the same masked mean
as the implicit ones, which is what a user adding a mask writes.

NumPy choices, where Spotlight's PyTorch has no one-to-one spelling:

* sigmoid is ``1 / (1 + np.exp(-x))``, the textbook form. It overflows (with a
  warning) for large negative ``x``; the benchmark's inputs are standard
  normal, where it does not, and the idiom is not wrapped in ``np.errstate``
  because users' code is not.
* ``torch.clamp(x, 0.0)`` is ``np.maximum(x, 0.0)``: the other common
  spelling, ``np.clip(x, 0, None)``, does the same work behind more Python
  and is slower, so the baseline picks the faster one.
* binary cross-entropy with logits is its stable formula
  ``np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))``.
* the masked mean converts the mask once, ``mask.astype(np.float32)``, then
  divides by the sum of the float mask, exactly as Spotlight does.

JAX idioms are the NumPy ones written with ``jax.numpy``, using
``jax.nn.sigmoid``; both sides run under ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Fn = Callable[..., Any]

LOSSES = (
    "pointwise",
    "bpr",
    "hinge",
    "adaptive_hinge",
    "regression",
    "poisson",
    "logistic",
)
IMPLICIT = frozenset({"pointwise", "bpr", "hinge", "adaptive_hinge"})

# k, the number of negatives adaptive_hinge_loss takes the maximum over
NEGATIVES = 5


def numpy_idioms() -> dict[str, Fn]:
    """Spotlight's expressions, written with NumPy."""
    import numpy as np

    def sigmoid(x: Any) -> Any:
        return 1.0 / (1.0 + np.exp(-x))

    def mean(loss: Any, mask: Any) -> Any:
        if mask is not None:
            mask = mask.astype(np.float32)
            loss = loss * mask
            return loss.sum() / mask.sum()
        return loss.mean()

    def pointwise(p: Any, n: Any, mask: Any = None) -> Any:
        positives_loss = 1.0 - sigmoid(p)
        negatives_loss = sigmoid(n)
        return mean(positives_loss + negatives_loss, mask)

    def bpr(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(1.0 - sigmoid(p - n), mask)

    def hinge(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(np.maximum(n - p + 1.0, 0.0), mask)

    def adaptive_hinge(p: Any, negatives: Any, mask: Any = None) -> Any:
        highest = np.max(negatives, axis=0)
        return hinge(p, highest.squeeze(), mask)

    def regression(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean((y - y_hat) ** 2, mask)

    def poisson(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean(y_hat - y * np.log(y_hat), mask)

    def logistic(y: Any, x: Any, mask: Any = None) -> Any:
        z = np.clip(y, 0, 1)
        loss = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
        return mean(loss, mask)

    return _by_name(locals())


def torch_idioms() -> dict[str, Fn]:
    """Spotlight's own PyTorch expressions (``spotlight/losses.py``)."""
    import torch
    from torch.nn import functional

    def mean(loss: Any, mask: Any) -> Any:
        if mask is not None:
            mask = mask.float()
            loss = loss * mask
            return loss.sum() / mask.sum()
        return loss.mean()

    def pointwise(p: Any, n: Any, mask: Any = None) -> Any:
        positives_loss = 1.0 - torch.sigmoid(p)
        negatives_loss = torch.sigmoid(n)
        return mean(positives_loss + negatives_loss, mask)

    def bpr(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(1.0 - torch.sigmoid(p - n), mask)

    def hinge(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(torch.clamp(n - p + 1.0, 0.0), mask)

    def adaptive_hinge(p: Any, negatives: Any, mask: Any = None) -> Any:
        highest, _ = torch.max(negatives, 0)
        return hinge(p, highest.squeeze(), mask)

    def regression(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean((y - y_hat) ** 2, mask)

    def poisson(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean(y_hat - y * torch.log(y_hat), mask)

    def logistic(y: Any, x: Any, mask: Any = None) -> Any:
        y = torch.clamp(y, 0, 1)
        if mask is None:
            return functional.binary_cross_entropy_with_logits(x, y, reduction="mean")
        loss = functional.binary_cross_entropy_with_logits(x, y, reduction="none")
        return mean(loss, mask)

    return _by_name(locals())


def jax_idioms() -> dict[str, Fn]:
    """Spotlight's expressions, written with ``jax.numpy`` (to be jitted)."""
    import jax
    import jax.numpy as jnp

    sigmoid = jax.nn.sigmoid

    def mean(loss: Any, mask: Any) -> Any:
        if mask is not None:
            mask = mask.astype(jnp.float32)
            loss = loss * mask
            return loss.sum() / mask.sum()
        return loss.mean()

    def pointwise(p: Any, n: Any, mask: Any = None) -> Any:
        positives_loss = 1.0 - sigmoid(p)
        negatives_loss = sigmoid(n)
        return mean(positives_loss + negatives_loss, mask)

    def bpr(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(1.0 - sigmoid(p - n), mask)

    def hinge(p: Any, n: Any, mask: Any = None) -> Any:
        return mean(jnp.maximum(n - p + 1.0, 0.0), mask)

    def adaptive_hinge(p: Any, negatives: Any, mask: Any = None) -> Any:
        highest = jnp.max(negatives, axis=0)
        return hinge(p, highest.squeeze(), mask)

    def regression(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean((y - y_hat) ** 2, mask)

    def poisson(y: Any, y_hat: Any, mask: Any = None) -> Any:
        return mean(y_hat - y * jnp.log(y_hat), mask)

    def logistic(y: Any, x: Any, mask: Any = None) -> Any:
        z = jnp.clip(y, 0, 1)
        loss = jnp.maximum(x, 0) - x * z + jnp.log1p(jnp.exp(-jnp.abs(x)))
        return mean(loss, mask)

    return _by_name(locals())


def jax_floor(a: Any, b: Any) -> Any:
    """One pass over both inputs, under jax.jit: the least any loss can cost."""
    import jax.numpy as jnp

    return jnp.sum(a + b)


def torch_floor(a: Any, b: Any) -> Any:
    """One pass over both inputs, under torch.compile: the least any loss can cost."""
    import torch

    return torch.sum(a + b)


def _by_name(namespace: dict[str, Any]) -> dict[str, Fn]:
    return {name: namespace[name] for name in LOSSES}
