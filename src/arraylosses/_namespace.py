"""Resolve the array library behind a call's inputs.

This is the only module that imports :mod:`array_api_compat`. It maps each array
*type* to a :class:`Backend` once, and caches the answer, so that dispatching a
loss costs one dictionary lookup per argument. No array library is imported to
detect it: a framework is imported only after an array of its own type has been
seen, to fetch the few native primitives that the standard lacks.
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
Primitive = Callable[[Array], Array]

__all__ = ["Backend", "backend_of", "describe_type"]


@dataclass(frozen=True, eq=False, slots=True)
class Backend:
    """One array library as the losses see it.

    Attributes
    ----------
    name : str
        Short name of the library, used in error messages.
    xp : namespace
        The array API namespace (array-api-compat's wrapper where one exists).
    sigmoid, relu : callable
        Elementwise primitives the standard lacks: the library's own where it has
        a stable one, else the standard-only forms of :mod:`._functional`.
    tracks_devices : bool
        Whether arrays of this library can live on different devices.
    """

    name: str
    xp: Namespace
    sigmoid: Primitive
    relu: Primitive
    tracks_devices: bool
    _dtypes: dict[Dtype, tuple[str, Dtype]] = field(default_factory=dict, repr=False)

    def kind(self, dtype: Dtype) -> str:
        """Classify ``dtype`` as 'bool', 'integral', 'real floating' or 'other'."""
        return self._classify(dtype)[0]

    def compute_dtype(self, dtype: Dtype) -> Dtype:
        """The dtype that math on a floating ``dtype`` runs in (float32 for halves)."""
        return self._classify(dtype)[1]

    def _classify(self, dtype: Dtype) -> tuple[str, Dtype]:
        known = self._dtypes.get(dtype)
        if known is None:
            xp = self.xp
            kind = next(
                (
                    k
                    for k in ("bool", "integral", "real floating")
                    if xp.isdtype(dtype, k)
                ),
                "other",
            )
            # the difference of two half-precision values can overflow: compute in float32
            is_half = (
                kind == "real floating"
                and xp.finfo(dtype).bits < _SINGLE_PRECISION_BITS
            )
            compute = xp.float32 if is_half else dtype
            known = self._dtypes[dtype] = (kind, compute)
        return known


_BACKENDS: dict[type, Backend] = {}
_SINGLE_PRECISION_BITS = 32


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

    sigmoid: Primitive = partial(_functional.sigmoid, xp=xp)
    relu: Primitive = partial(_functional.relu, xp=xp)
    tracks_devices = True
    if array_api_compat.is_numpy_namespace(xp):
        name_of_library = "numpy"
        tracks_devices = False
    elif array_api_compat.is_dask_namespace(xp):
        name_of_library = "dask"
        tracks_devices = False
    elif array_api_compat.is_torch_namespace(xp):
        name_of_library = "torch"
        # the array is a tensor, so torch is imported; torch.compile traces this
        # lookup on a first compiled call, and it can't trace import machinery
        torch = sys.modules["torch"]
        sigmoid, relu = torch.sigmoid, torch.relu
    elif array_api_compat.is_jax_namespace(xp):
        name_of_library = "jax"
        jax_nn = importlib.import_module("jax.nn")
        sigmoid, relu = jax_nn.sigmoid, jax_nn.relu
    elif array_api_compat.is_cupy_namespace(xp):
        name_of_library = "cupy"
        special = importlib.import_module("cupyx.scipy.special")
        sigmoid = special.expit
    else:
        name_of_library = getattr(xp, "__name__", describe_type(array))

    return Backend(
        name=name_of_library,
        xp=xp,
        sigmoid=sigmoid,
        relu=relu,
        tracks_devices=tracks_devices,
    )
