"""Gradients: ours through each library's autograd, the references' two ways.

Ours: a vector-Jacobian product through the library's own autograd, with a
cotangent of 1 for a reduced loss and a fixed cotangent (values exact in every
dtype) for ``reduction="none"``. The table :data:`AUTOGRAD` says which
backends have one.

References, both in float64 on the same rounded inputs as ours:

- torch autograd of the reference formula (:func:`references.torch_ops`);
- central finite differences of the NumPy reference, used where torch is
  missing, for the deviation rows (where inputs sit at 0 or at 1e4 and the
  naive formula's own autograd would meet 0·inf), and to check the first
  (``check:fd`` rows of the ``reference`` backend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import references
from .backends import Backend

__all__ = [
    "AUTOGRAD",
    "finite_differences",
    "reference_gradients",
    "torch_available",
]

# (backend, call, args, wrt, cotangent or None, dtype name, jit) -> (value, grads)
VJP = Callable[..., tuple[np.ndarray, list[np.ndarray]]]


def _torch_vjp(
    backend: Backend,
    call: Callable[..., Any],
    args: Sequence[Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
    dtype: str,
    jit: bool = False,  # noqa: ARG001 - torch runs eagerly here
) -> tuple[np.ndarray, list[np.ndarray]]:
    torch = backend.module
    args = list(args)
    leaves = []
    for index in wrt:
        leaf = args[index].detach().clone().requires_grad_(True)
        args[index] = leaf
        leaves.append(leaf)
    out = call(*args)
    seed = None if cotangent is None else backend.array(cotangent, dtype)
    grads = torch.autograd.grad(out, leaves, grad_outputs=seed, allow_unused=True)
    return backend.to_numpy(out), [
        np.zeros(leaf.shape) if g is None else backend.to_numpy(g)
        for g, leaf in zip(grads, leaves, strict=True)
    ]


def _jax_vjp(
    backend: Backend,
    call: Callable[..., Any],
    args: Sequence[Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
    dtype: str,
    jit: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    jax = backend.module
    fixed = list(args)

    def loss_of(*differentiated: Any) -> Any:
        full = list(fixed)
        for index, value in zip(wrt, differentiated, strict=True):
            full[index] = value
        return call(*full)

    def value_and_grads(*differentiated: Any) -> Any:
        out, pullback = jax.vjp(loss_of, *differentiated)
        # cast in NumPy: a conversion on the device compiles per shape
        seed = (
            np.ones(out.shape, out.dtype)
            if cotangent is None
            else cotangent.astype(out.dtype)
        )
        return out, pullback(seed)

    if jit:
        value_and_grads = jax.jit(value_and_grads)
    out, grads = value_and_grads(*(args[index] for index in wrt))
    del dtype
    return backend.to_numpy(out), [backend.to_numpy(g) for g in grads]


# Ours, per backend. NumPy, array-api-strict, Dask and CuPy have no autograd and
# get value rows only. A later change adds closed-form gradients for them: they
# belong in this table, under the backend's name, with the same signature.
AUTOGRAD: dict[str, VJP] = {
    "torch": _torch_vjp,
    "jax": _jax_vjp,
}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401, PLC0415 - optional: the gradient reference
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
    return True


def reference_gradients(
    name: str,
    args: Sequence[np.ndarray | None],
    reduction: str,
    options: dict[str, Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
    *,
    method: str = "autograd",
) -> list[np.ndarray]:
    """Gradients of the float64 reference with respect to ``args[i]`` for i in wrt.

    ``args`` is (first, second, mask). ``method`` is 'autograd' (torch autograd
    of the formula) or 'fd' (central differences).
    """
    if method == "autograd":
        return _autograd_of_reference(name, args, reduction, options, wrt, cotangent)
    return finite_differences(name, args, reduction, options, wrt, cotangent)


def _autograd_of_reference(
    name: str,
    args: Sequence[np.ndarray | None],
    reduction: str,
    options: dict[str, Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
) -> list[np.ndarray]:
    import torch  # noqa: PLC0415 - optional: only for the gradient reference

    tensors = [None if a is None else torch.asarray(np.array(a)) for a in args]
    leaves = []
    for index in wrt:
        leaf = tensors[index].to(torch.float64).requires_grad_(True)
        tensors[index] = leaf
        leaves.append(leaf)
    first, second, mask = tensors
    value = references.evaluate(
        name, first, second, mask, reduction, options, references.torch_ops()
    )
    seed = None if cotangent is None else torch.asarray(cotangent)
    grads = torch.autograd.grad(value, leaves, grad_outputs=seed, allow_unused=True)
    return [
        np.zeros(leaf.shape) if g is None else g.numpy()
        for g, leaf in zip(grads, leaves, strict=True)
    ]


def finite_differences(
    name: str,
    args: Sequence[np.ndarray | None],
    reduction: str,
    options: dict[str, Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
) -> list[np.ndarray]:
    """Central differences of the NumPy reference, with a step of 1e-6."""

    def scalar(values: Sequence[np.ndarray | None]) -> float:
        first, second, mask = values
        with np.errstate(all="ignore"):
            out = references.evaluate(name, first, second, mask, reduction, options)
        if cotangent is not None:
            out = np.sum(out * cotangent)
        return float(out)

    grads = []
    for index in wrt:
        base = np.asarray(args[index], dtype=np.float64)
        grad = np.zeros(base.shape)
        for position in np.ndindex(base.shape):
            values = list(args)
            up, down = base.copy(), base.copy()
            up[position] += 1e-6
            down[position] -= 1e-6
            values[index] = up
            high = scalar(values)
            values[index] = down
            low = scalar(values)
            # divide by the step as rounded into x (at |x| = 1e4 it differs from 2e-6)
            grad[position] = (high - low) / (up[position] - down[position])
        grads.append(grad)
    return grads
