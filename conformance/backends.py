"""The array libraries the suite runs the losses on, each behind one small adapter.

An adapter turns a float64 (or bool, or int64) NumPy array into an array of its
library, in a given dtype and on a given device, and turns results back into
float64 NumPy arrays. It knows nothing about the losses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ALL_BACKENDS", "DEVICE_BACKENDS", "DTYPES", "Backend", "load_backend"]

DTYPES = ("float16", "bfloat16", "float32", "float64")
ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
# The backends that have arrays on each device; CuPy is GPU-only.
DEVICE_BACKENDS = {
    "cpu": ("numpy", "array_api_strict", "torch", "jax", "dask"),
    "cuda": ("cupy", "torch", "jax"),
}


@dataclass
class Backend:
    """One array library on one device."""

    name: str
    device: str
    module: Any
    dtypes: dict[str, Any]
    _asarray: Callable[[np.ndarray, Any], Any]
    _to_numpy: Callable[[Any], np.ndarray]
    version: str = ""
    # several lazy results at once (Dask: one pass over their shared graph)
    _compute_all: Callable[[Sequence[Any]], Sequence[Any]] | None = None

    @property
    def label(self) -> str:
        return self.name if self.device == "cpu" else f"{self.name}:{self.device}"

    def array(self, values: np.ndarray, dtype: str | None = None) -> Any:
        """``values`` as an array of this library, in ``dtype`` (None: as is)."""
        return self._asarray(values, None if dtype is None else self.dtypes[dtype])

    def to_numpy(self, array: Any) -> np.ndarray:
        """A result or input of this library as a float64 (or bool, int) NumPy array."""
        values = np.asarray(self._to_numpy(array))
        if values.dtype.kind in "biu":
            return values
        return values.astype(np.float64)

    def to_numpy_all(self, *arrays: Any) -> list[np.ndarray]:
        """Several arrays as :meth:`to_numpy` gives them, computed together."""
        if self._compute_all is not None:
            arrays = tuple(self._compute_all(arrays))
        return [self.to_numpy(array) for array in arrays]

    def dtype_name(self, array: Any) -> str:
        """The name in :data:`DTYPES` of ``array``'s dtype, or its repr."""
        for name, dtype in self.dtypes.items():
            if array.dtype == dtype:
                return name
        return str(array.dtype)


def _dtypes(namespace: Any) -> dict[str, Any]:
    return {
        name: getattr(namespace, name) for name in DTYPES if hasattr(namespace, name)
    }


def _cast(values: np.ndarray, dtype: Any) -> np.ndarray:
    return values if dtype is None else values.astype(dtype)


def _numpy(device: str) -> Backend:
    _cpu_only("numpy", device)
    return Backend(
        "numpy",
        device,
        np,
        _dtypes(np),
        lambda values, dtype: _cast(np.asarray(values), dtype),
        np.asarray,
        np.__version__,
    )


def _strict(device: str) -> Backend:
    _cpu_only("array_api_strict", device)
    xp = importlib.import_module("array_api_strict")
    return Backend(
        "array_api_strict",
        device,
        xp,
        _dtypes(xp),
        lambda values, dtype: xp.asarray(values, dtype=dtype),
        np.asarray,
        getattr(xp, "__version__", ""),
    )


def _torch(device: str) -> Backend:
    torch = importlib.import_module("torch")
    if device == "cuda" and not torch.cuda.is_available():
        msg = "torch sees no CUDA device"
        raise RuntimeError(msg)

    def asarray(values: np.ndarray, dtype: Any) -> Any:
        return torch.asarray(np.array(values), dtype=dtype, device=device)

    def to_numpy(array: Any) -> np.ndarray:
        array = array.detach().to("cpu")
        if array.dtype.is_floating_point:
            array = array.to(torch.float64)
        return array.numpy()

    return Backend(
        "torch", device, torch, _dtypes(torch), asarray, to_numpy, torch.__version__
    )


def _jax(device: str) -> Backend:
    jax = importlib.import_module("jax")
    jax.config.update("jax_enable_x64", True)  # float64 cases need it
    jnp = importlib.import_module("jax.numpy")
    try:
        target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    except RuntimeError as error:
        msg = f"JAX has no {device} device: {error}"
        raise RuntimeError(msg) from error

    def asarray(values: np.ndarray, dtype: Any) -> Any:
        # cast in NumPy (bfloat16 through ml_dtypes): a conversion on the device
        # would compile one XLA kernel per shape and dtype
        return jax.device_put(_cast(np.asarray(values), dtype), target)

    def to_numpy(array: Any) -> np.ndarray:
        values = np.asarray(jax.device_get(array))
        return values if values.dtype.kind in "biu" else values.astype(np.float64)

    return Backend("jax", device, jax, _dtypes(jnp), asarray, to_numpy, jax.__version__)


def _dask(device: str) -> Backend:
    _cpu_only("dask", device)
    dask = importlib.import_module("dask")
    da = importlib.import_module("dask.array")

    def asarray(values: np.ndarray, dtype: Any) -> Any:
        values = _cast(np.asarray(values), dtype)
        # two chunks along every axis longer than 1, so that reductions combine chunks
        chunks = tuple(max(1, (size + 1) // 2) for size in values.shape)
        return da.from_array(values, chunks=chunks or ())

    def to_numpy(array: Any) -> np.ndarray:
        if not hasattr(array, "compute"):
            return np.asarray(array)
        # The synchronous scheduler runs the same chunk functions as the threaded
        # default, in order, without a thread pool's start-up on every tiny graph.
        return np.asarray(array.compute(scheduler="synchronous"))

    def compute_all(arrays: Sequence[Any]) -> Sequence[Any]:
        return dask.compute(*arrays, scheduler="synchronous")

    return Backend(
        "dask",
        device,
        da,
        _dtypes(np),
        asarray,
        to_numpy,
        dask.__version__,
        compute_all,
    )


def _cupy(device: str) -> Backend:
    if device != "cuda":
        msg = "CuPy arrays live on a GPU only: use --device cuda"
        raise RuntimeError(msg)
    cupy = importlib.import_module("cupy")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        msg = "CuPy imports but sees no CUDA device"
        raise RuntimeError(msg)
    return Backend(
        "cupy",
        device,
        cupy,
        _dtypes(cupy),
        lambda values, dtype: cupy.asarray(_cast(np.asarray(values), dtype)),
        cupy.asnumpy,
        cupy.__version__,
    )


def _cpu_only(name: str, device: str) -> None:
    if device != "cpu":
        msg = f"{name} has no {device} device"
        raise RuntimeError(msg)


_LOADERS: dict[str, Callable[[str], Backend]] = {
    "numpy": _numpy,
    "array_api_strict": _strict,
    "torch": _torch,
    "jax": _jax,
    "dask": _dask,
    "cupy": _cupy,
}


def load_backend(name: str, device: str) -> Backend:
    """The adapter of backend ``name`` on ``device``; raises if it can't be used here."""
    return _LOADERS[name](device)
