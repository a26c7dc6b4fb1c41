"""Resolve the array library behind a call's inputs.

This is the only module that imports :mod:`array_api_compat`. It maps each array
*type* to a :class:`Backend` once, and caches the answer, so that dispatching a
loss costs one dictionary lookup per argument. No array library is imported to
detect it: a framework's module is taken from ``sys.modules`` (or imported, for a
submodule) only after an array of its own type has been seen, to fetch the few
native primitives that beat the standard-only forms.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import array_api_compat

from . import _functional

Array = Any
Namespace = Any
Dtype = Any
Primitive = Callable[..., Array]

__all__ = ["Backend", "backend_of", "describe_type"]

_SINGLE_PRECISION_BITS = 32


@dataclass(frozen=True, eq=False, slots=True)
class Backend:
    """One array library as the losses see it.

    Attributes
    ----------
    name : str
        Short name of the library, used in error messages.
    xp : namespace
        The array API namespace (array-api-compat's wrapper where one exists).
    sigmoid, relu, mean, sum : callable
        Primitives of one array: the library's own where it has a fast, stable
        one, else the standard-only forms of :mod:`._functional` (``mean`` and
        ``sum`` reduce over every axis).
    where : callable
        ``where(condition, x, y)``, the standard's ``where`` (PyTorch's own
        for tensors: the wrapper converts Python scalars on every call).
    logistic : callable
        ``logistic(observed, logit)``, Spotlight's elementwise logistic loss.
    count : callable
        ``count(mask, dtype)``, the number of True elements of a bool mask, or 1
        where there are none, as a 0-d array (of ``dtype``, or integer on torch).
    tracks_devices : bool
        Whether arrays of this library can live on different devices.
    floating : dict
        Every real floating dtype met so far, mapped to the dtype its math runs in
        (float32 for half precision). Filled by :meth:`compute_dtype`.
    """

    name: str
    xp: Namespace
    sigmoid: Primitive
    relu: Primitive
    mean: Primitive
    sum: Primitive
    where: Primitive
    logistic: Primitive
    count: Primitive
    tracks_devices: bool
    floating: dict[Dtype, Dtype] = field(default_factory=dict, repr=False)
    _kinds: dict[Dtype, str] = field(default_factory=dict, repr=False)

    def kind(self, dtype: Dtype) -> str:
        """Classify ``dtype`` as 'bool', 'integral', 'real floating' or 'other'."""
        kind = self._kinds.get(dtype)
        if kind is None:
            xp = self.xp
            kind = next(
                (
                    k
                    for k in ("bool", "integral", "real floating")
                    if xp.isdtype(dtype, k)
                ),
                "other",
            )
            self._kinds[dtype] = kind
        return kind

    def compute_dtype(self, dtype: Dtype) -> Dtype | None:
        """The dtype math on ``dtype`` runs in, or None if it is not real floating."""
        compute = self.floating.get(dtype)
        if compute is None and self.kind(dtype) == "real floating":
            # the difference of two half-precision values can overflow: compute in float32
            is_half = self.xp.finfo(dtype).bits < _SINGLE_PRECISION_BITS
            compute = self.floating[dtype] = self.xp.float32 if is_half else dtype
        return compute


_BACKENDS: dict[type, Backend] = {}


def backend_of(array: object, name: str) -> Backend:
    """Return the :class:`Backend` of ``array``, the argument called ``name``.

    Raises
    ------
    TypeError
        If ``array`` is not an array of a library the array API reaches.
    """
    backend = _BACKENDS.get(type(array))
    if backend is None:
        backend = _BACKENDS[type(array)] = _resolve(array, name)
    return backend


def describe_type(array: object) -> str:
    """``module.Class`` of ``array``, for error messages."""
    cls = type(array)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def _resolve(array: object, name: str) -> Backend:
    if isinstance(array, bool | int | float | complex) or not hasattr(array, "shape"):
        msg = (
            f"{name} must be an array of an array API library (NumPy, CuPy, PyTorch, "
            f"JAX, Dask, array-api-strict, ...), got {describe_type(array)}"
        )
        raise TypeError(msg)
    try:
        xp = array_api_compat.array_namespace(array)
    except TypeError as error:
        msg = f"{name} is a {describe_type(array)}, which is not an array API array"
        raise TypeError(msg) from error

    primitives: dict[str, Primitive] = {
        "sigmoid": partial(_functional.sigmoid, xp=xp),
        "relu": partial(_functional.relu, xp=xp),
        "mean": xp.mean,
        "sum": xp.sum,
        "where": xp.where,
        "logistic": partial(_functional.logistic, xp=xp),
        "count": partial(_functional.count_by_sum, xp=xp),
    }
    tracks_devices = True
    if array_api_compat.is_numpy_namespace(xp):
        library = "numpy"
        tracks_devices = False
        # the ufunc's own reduction: np.sum adds a microsecond of Python around it
        primitives.update(
            _ufunc_primitives(xp, sum_all=partial(xp.add.reduce, axis=None))
        )
    elif array_api_compat.is_dask_namespace(xp):
        library = "dask"
        tracks_devices = False
    elif array_api_compat.is_torch_namespace(xp):
        library = "torch"
        # the array is a tensor, so torch is imported; torch.compile traces this
        # lookup on a first compiled call, and it can't trace import machinery
        torch = sys.modules["torch"]
        # torch's own functions, not array-api-compat's wrappers of them: they
        # have the same semantics for these calls and no Python layer on top
        primitives.update(
            sigmoid=torch.sigmoid,
            relu=torch.relu,
            mean=torch.mean,
            sum=torch.sum,
            where=torch.where,
            logistic=partial(_torch_logistic, torch=torch),
            count=partial(_torch_count, torch=torch),
        )
    elif array_api_compat.is_jax_namespace(xp):
        library = "jax"
        jax_nn = importlib.import_module("jax.nn")
        primitives.update(sigmoid=jax_nn.sigmoid, relu=jax_nn.relu)
    elif array_api_compat.is_cupy_namespace(xp):
        library = "cupy"
        primitives.update(_ufunc_primitives(xp, sum_all=xp.sum))
        primitives["sigmoid"] = importlib.import_module("cupyx.scipy.special").expit
    else:
        library = getattr(xp, "__name__", describe_type(array))

    return Backend(
        name=library,
        xp=xp,
        sigmoid=primitives["sigmoid"],
        relu=primitives["relu"],
        mean=primitives["mean"],
        sum=primitives["sum"],
        where=primitives["where"],
        logistic=primitives["logistic"],
        count=primitives["count"],
        tracks_devices=tracks_devices,
    )


def _ufunc_primitives(xp: Namespace, *, sum_all: Primitive) -> dict[str, Primitive]:
    """Primitives for libraries of ufuncs that write into ``out=`` (NumPy, CuPy)."""
    return {
        "sigmoid": partial(_functional.sigmoid_in_one_buffer, xp=xp),
        "sum": sum_all,
        "mean": partial(_functional.mean_of_sum, sum_all=sum_all),
        "count": partial(_functional.count_by_nonzero, xp=xp),
    }


def _torch_logistic(observed: Array, logit: Array, *, torch: Any) -> Array:
    positive = torch.clamp(observed, 0.0, 1.0)
    if positive.shape != logit.shape:  # the fused kernel takes no broadcasting
        logit, positive = torch.broadcast_tensors(logit, positive)
    # one fused kernel, stable for any logit: PyTorch's binary cross-entropy with logits
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logit, positive, reduction="none"
    )


def _torch_count(mask: Array, dtype: Any, *, torch: Any) -> Array:  # noqa: ARG001
    # an integer count: summing bools as integers is faster, and a float tensor
    # divided by an integer one stays float; at least 1, in place on the new sum
    return torch.sum(mask).clamp_min_(1)
