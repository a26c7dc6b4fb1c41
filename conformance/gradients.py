"""Gradients: ours two ways, the references' two ways.

Ours, as a vector-Jacobian product with a cotangent of 1 for a reduced loss and
a fixed cotangent (values exact in every dtype) for ``reduction="none"``, by
each method the backend has (the table :data:`GRADIENTS`):

- ``"autograd"``: through the library's own autograd (PyTorch, JAX);
- ``"closed form"``: through :func:`arraylosses.value_and_grad`, on every
  backend, NumPy, array-api-strict, Dask and CuPy included, which have no
  autograd. Where a backend has both, both are checked.

References, both in float64 on the same rounded inputs as ours:

- torch autograd of the reference formula (:func:`references.torch_ops`);
- central finite differences of the NumPy reference, used where torch is
  missing, for the deviation rows (where inputs sit at 0 or at 1e4 and the
  naive formula's own autograd would meet 0·inf), and to check the first
  (``check:fd`` rows of the ``reference`` backend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import cases, references
from .backends import Backend

__all__ = [
    "BY_AUTOGRAD",
    "CLOSED_FORM",
    "GRADIENTS",
    "LossCall",
    "finite_differences",
    "loss_call",
    "reference_gradients",
    "torch_available",
]

# (backend, call, args, wrt, cotangent or None, dtype name, jit) -> (value, grads)
VJP = Callable[..., tuple[np.ndarray, list[np.ndarray]]]


@dataclass(frozen=True)
class LossCall:
    """A public loss with its reduction and options, called on (first, second, mask).

    Autograd only calls it; the closed form needs its parts, to hand the function
    itself to :func:`arraylosses.value_and_grad`.
    """

    function: Callable[..., Any]
    reduction: str = "mean"
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any) -> Any:
        return self.function(*args, reduction=self.reduction, **self.options)


def loss_call(loss: cases.Loss, reduction: str = "mean") -> LossCall:
    """The public function of ``loss``, with ``reduction`` and ``loss``'s options."""
    import arraylosses  # noqa: PLC0415 - imported when a run starts, not at collection

    return LossCall(getattr(arraylosses, loss.name), reduction, loss.kwargs)


def _torch_vjp(
    backend: Backend,
    call: LossCall,
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
    call: LossCall,
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


# Half-precision inputs are computed in float32 (the backends guide), and so are
# the weights mask·c of the closed form's pullback: exact products there, where
# the half type would round the product of a rounded weight and c = 1.5.
_WEIGHTS_DTYPE = {"float16": "float32", "bfloat16": "float32"}


def _closed_form_vjp(
    backend: Backend,
    call: LossCall,
    args: Sequence[Any],
    wrt: Sequence[int],
    cotangent: np.ndarray | None,
    dtype: str,
    jit: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The VJP through :func:`arraylosses.value_and_grad`, on any backend.

    A reduced loss: its value and gradients as they come. ``reduction="none"``
    with a cotangent c: ``value_and_grad`` takes scalar losses only, and the
    pullback of ``L·mask`` at c is the gradient of ``sum(L·mask·c)``, so it runs
    with ``reduction="sum"`` and the weights mask·c as the mask (a bool mask:
    c where True, 0 elsewhere; no mask: c); the value is then the loss's own,
    from ``call``. Explicit losses give no gradient for the observed ratings
    (argument 0), so ``wrt`` may name it for the implicit losses only.
    """
    import arraylosses  # noqa: PLC0415 - imported when a run starts, not at collection

    gradients_of = arraylosses.value_and_grad(call.function)
    first, second, mask = args
    if cotangent is None:
        reduction, weights = call.reduction, mask
    else:
        reduction = "sum"
        weights = backend.array(
            _weights_times(backend, mask, cotangent), _WEIGHTS_DTYPE.get(dtype, dtype)
        )

    def value_and_grads(first: Any, second: Any, mask: Any, weights: Any) -> Any:
        value, grads = gradients_of(
            first, second, weights, reduction=reduction, **call.options
        )
        if cotangent is not None:
            value = call(first, second, mask)
        return value, grads

    if jit:
        if backend.name != "jax":
            msg = f"no jit for {backend.name}"
            raise ValueError(msg)
        value_and_grads = backend.module.jit(value_and_grads)
    value, grads = value_and_grads(first, second, mask, weights)
    # implicit losses: (d_first, d_second); explicit: d_second (the predictions)
    by_index = dict(enumerate(grads)) if isinstance(grads, tuple) else {1: grads}
    unknown = [index for index in wrt if index not in by_index]
    if unknown:
        msg = f"value_and_grad gives no gradient for argument {unknown}"
        raise ValueError(msg)
    chosen = [by_index[index] for index in wrt]
    problems = [
        problem
        for index, gradient in zip(wrt, chosen, strict=True)
        for problem in _unlike(f"d/d{_ARGUMENTS[index]}", gradient, args[index])
    ]
    if cotangent is None:
        problems.extend(_unlike("value", value, None, like_dtype=second.dtype))
    if problems:
        # the promise of value_and_grad: each gradient like its argument
        raise TypeError("; ".join(problems))
    value, *chosen = backend.to_numpy_all(value, *chosen)
    return value, chosen


_ARGUMENTS = ("first", "second")


def _weights_times(backend: Backend, mask: Any, cotangent: np.ndarray) -> np.ndarray:
    """mask·c at the loss's shape, in float64 (exact: c is -1, 0.5, 1, 1.5 or 2)."""
    if mask is None:
        return cotangent
    values = backend.to_numpy(mask)
    if values.dtype == np.bool_:
        return np.where(values, cotangent, 0.0)
    return values.astype(np.float64) * cotangent


def _unlike(name: str, array: Any, like: Any, *, like_dtype: Any = None) -> list[str]:
    """How ``array`` differs from ``like`` in library, shape, dtype and device.

    ``like`` None: a scalar result, of dtype ``like_dtype``.
    """
    if like is None:
        shape, dtype = (), like_dtype
    else:
        shape, dtype = tuple(like.shape), like.dtype
        if type(array) is not type(like):
            return [f"{name} is a {type(array).__name__}, not a {type(like).__name__}"]
        if getattr(array, "device", None) != getattr(like, "device", None):
            return [f"{name} on {array.device}, not {like.device}"]
    problems = []
    if tuple(array.shape) != shape:
        problems.append(f"{name} has shape {tuple(array.shape)}, expected {shape}")
    if array.dtype != dtype:
        problems.append(f"{name} has dtype {array.dtype}, expected {dtype}")
    return problems


# Ours, per backend (as backends.py names them) and method: autograd where the
# library has one, and the closed form (arraylosses.value_and_grad) everywhere.
BY_AUTOGRAD, CLOSED_FORM = "autograd", "closed form"
GRADIENTS: dict[str, dict[str, VJP]] = {
    "numpy": {CLOSED_FORM: _closed_form_vjp},
    "array_api_strict": {CLOSED_FORM: _closed_form_vjp},
    "torch": {BY_AUTOGRAD: _torch_vjp, CLOSED_FORM: _closed_form_vjp},
    "jax": {BY_AUTOGRAD: _jax_vjp, CLOSED_FORM: _closed_form_vjp},
    "dask": {CLOSED_FORM: _closed_form_vjp},
    "cupy": {CLOSED_FORM: _closed_form_vjp},
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
