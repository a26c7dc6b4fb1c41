"""Peers' own functions, where they compute the same quantity as a loss.

Each peer is imported inside a guard: one that is missing or broken is reported
(by :attr:`Peer.reason`) and its rows are left out, never a crash. Every peer
is evaluated in float64 on the same rounded inputs as the reference, without a
mask (peers have none), and reduced by the peer itself where it can ('mean',
'sum', 'none' for torch.nn.functional) or with a plain NumPy mean or sum of its
elementwise output (optax's losses are elementwise).

| loss | torch.nn.functional | optax |
| --- | --- | --- |
| logistic_loss | binary_cross_entropy_with_logits(x, clip(y, 0, 1)) | sigmoid_binary_cross_entropy(x, clip(y, 0, 1)) |
| regression_loss | mse_loss(yhat, y) | squared_error(yhat, y) |
| poisson_loss | poisson_nll_loss(yhat, y, log_input=..., full=False, eps=0) | - |
| hinge_loss | margin_ranking_loss(p, n, 1, margin=m) | hinge_loss(p - n, 1), margin 1 only |
| adaptive_hinge_loss | margin_ranking_loss(p, max_k N, 1, margin=m) | hinge_loss(p - max_k N, 1), margin 1 only |

margin_ranking_loss(a, b, t, margin) = max(0, -t·(a - b) + margin), so with t = 1
it is max(n - p + m, 0), the hinge. optax's hinge_loss(s, t) = max(0, 1 - s·t)
(optax/losses/_classification.py), so with s = p - n and t = 1 it is
max(n - p + 1, 0). poisson_nll_loss with log_input=False computes
``input - target * log(input + eps)``: its default eps = 1e-8 would shift
log(yhat) by up to 5e-8 at the matrix's smallest rate (0.2), far above the
float64 tolerance, so eps=0 is passed (every rate in the matrix is > 0).

On PyTorch, the package's unmasked logistic and regression losses call the same
ATen kernels as binary_cross_entropy_with_logits and mse_loss: there the
torch.nn.functional rows show that the call is the peer's, in the caller's
dtype, and the float64 reference rows are the independent check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PEER_NAMES", "Peer", "load_peers"]

PEER_NAMES = ("torch.nn.functional", "optax")

Computation = Callable[[np.ndarray, np.ndarray, str, dict[str, Any]], Any]


@dataclass
class Peer:
    """One peer library: the losses it has a function for, or why it has none."""

    name: str
    functions: dict[str, Computation] = field(default_factory=dict)
    reason: str = ""

    @property
    def available(self) -> bool:
        return not self.reason

    def compute(
        self,
        loss: str,
        first: np.ndarray,
        second: np.ndarray,
        reduction: str,
        options: dict[str, Any],
    ) -> np.ndarray | None:
        """The peer's value, float64, or None where it has no such function."""
        function = self.functions.get(loss)
        if function is None:
            return None
        first, second = _common_shape(loss, first, second)
        value = function(first, second, reduction, options)
        return None if value is None else np.asarray(value, np.float64)


def _common_shape(
    loss: str, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # Peers want equal shapes (torch warns on a broadcast target, optax refuses one)
    if loss == "adaptive_hinge_loss":
        shape = np.broadcast_shapes(first.shape, second.shape[1:])
        return np.broadcast_to(first, shape), np.broadcast_to(
            second, (second.shape[0], *shape)
        )
    first, second = np.broadcast_arrays(first, second)
    return first, second


def _numpy_reduce(values: Any, reduction: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if reduction == "mean":
        return np.asarray(np.mean(values))
    if reduction == "sum":
        return np.asarray(np.sum(values))
    return values


def _torch_peer() -> Peer:
    try:
        import torch  # noqa: PLC0415 - a guarded, optional peer
        from torch.nn import functional  # noqa: PLC0415
    except Exception as error:  # noqa: BLE001 - any failure: report, don't crash
        return Peer("torch.nn.functional", reason=f"cannot import torch: {error}")

    def t(values: np.ndarray) -> Any:
        return torch.asarray(np.array(values, dtype=np.float64))  # a writable copy

    def out(value: Any) -> np.ndarray:
        return np.asarray(value.detach().numpy())

    def logistic(y: Any, x: Any, reduction: str, _: dict[str, Any]) -> np.ndarray:
        target = torch.clamp(t(y), 0.0, 1.0)
        return out(
            functional.binary_cross_entropy_with_logits(
                t(x), target, reduction=reduction
            )
        )

    def regression(y: Any, yhat: Any, reduction: str, _: dict[str, Any]) -> np.ndarray:
        return out(functional.mse_loss(t(yhat), t(y), reduction=reduction))

    def poisson(y: Any, yhat: Any, reduction: str, opts: dict[str, Any]) -> np.ndarray:
        return out(
            functional.poisson_nll_loss(
                t(yhat),
                t(y),
                log_input=opts.get("log_input", False),
                full=False,
                eps=0.0,
                reduction=reduction,
            )
        )

    def hinge(p: Any, n: Any, reduction: str, opts: dict[str, Any]) -> np.ndarray:
        positive, negative = t(p), t(n)
        return out(
            functional.margin_ranking_loss(
                positive,
                negative,
                torch.ones_like(positive),
                margin=opts.get("margin", 1.0),
                reduction=reduction,
            )
        )

    def adaptive(p: Any, negs: Any, reduction: str, opts: dict[str, Any]) -> np.ndarray:
        return hinge(p, np.max(negs, axis=0), reduction, opts)

    return Peer(
        "torch.nn.functional",
        {
            "logistic_loss": logistic,
            "regression_loss": regression,
            "poisson_loss": poisson,
            "hinge_loss": hinge,
            "adaptive_hinge_loss": adaptive,
        },
    )


def _optax_peer() -> Peer:
    try:
        import jax  # noqa: PLC0415 - a guarded, optional peer

        jax.config.update("jax_enable_x64", True)  # the peers run in float64
        import jax.numpy as jnp  # noqa: PLC0415
        import optax  # noqa: PLC0415
    except Exception as error:  # noqa: BLE001 - any failure: report, don't crash
        return Peer("optax", reason=f"cannot import optax (JAX): {error}")

    def j(values: np.ndarray) -> Any:
        return jnp.asarray(values, dtype=jnp.float64)

    def logistic(y: Any, x: Any, reduction: str, _: dict[str, Any]) -> np.ndarray:
        labels = np.clip(y, 0.0, 1.0)
        value = optax.losses.sigmoid_binary_cross_entropy(j(x), j(labels))
        return _numpy_reduce(value, reduction)

    def regression(y: Any, yhat: Any, reduction: str, _: dict[str, Any]) -> np.ndarray:
        return _numpy_reduce(optax.losses.squared_error(j(yhat), j(y)), reduction)

    def hinge(p: Any, n: Any, reduction: str, opts: dict[str, Any]) -> Any:
        if opts.get("margin", 1.0) != 1.0:
            return None
        scores = j(p - n)
        value = optax.losses.hinge_loss(scores, jnp.ones_like(scores))
        return _numpy_reduce(value, reduction)

    def adaptive(p: Any, negs: Any, reduction: str, opts: dict[str, Any]) -> Any:
        return hinge(p, np.max(negs, axis=0), reduction, opts)

    return Peer(
        "optax",
        {
            "logistic_loss": logistic,
            "regression_loss": regression,
            "hinge_loss": hinge,
            "adaptive_hinge_loss": adaptive,
        },
    )


def load_peers() -> list[Peer]:
    """Both peers, each available or with the reason it is not."""
    return [_torch_peer(), _optax_peer()]
