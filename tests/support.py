"""Helpers shared by the tests: float64 references, conversions and assertions.

The references are Spotlight's formulas written naively in NumPy float64, as the
README's table and each loss's docstring state them; they share no code with the
package.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import array_api_compat
import numpy as np
import pytest

import arraylosses

Array = Any

# float32 results may differ from a float64 reference by a few ulps of each
# elementwise term, accumulated over a mean: 1e-5 relative is 80 float32 ulps
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 1e-5, "float64": 1e-12}
ATOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-13}


# --- Spotlight's formulas in float64 -------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def ref_pointwise(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (1.0 - _sigmoid(p)) + _sigmoid(n)


def ref_bpr(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    return 1.0 - _sigmoid(p - n)


def ref_hinge(p: np.ndarray, n: np.ndarray, margin: float = 1.0) -> np.ndarray:
    return np.maximum(n - p + margin, 0.0)


def ref_adaptive_hinge(
    p: np.ndarray, negatives: np.ndarray, margin: float = 1.0
) -> np.ndarray:
    return ref_hinge(p, negatives.max(axis=0), margin)


def ref_regression(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    return (y - y_hat) ** 2


def ref_poisson(
    y: np.ndarray, y_hat: np.ndarray, log_input: bool = False
) -> np.ndarray:
    if log_input:
        return np.exp(y_hat) - y * y_hat
    return y_hat - y * np.log(y_hat)


def ref_logistic(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = np.clip(y, 0.0, 1.0)
    return np.maximum(x, 0.0) - x * z + np.log1p(np.exp(-np.abs(x)))


def ref_reduce(
    loss: np.ndarray, mask: np.ndarray | None = None, reduction: str = "mean"
) -> Any:
    """Spotlight's masked mean (and our 'sum' and 'none'), in float64."""
    loss = np.asarray(loss, dtype=np.float64)
    if mask is not None:
        weights = np.broadcast_to(np.asarray(mask, dtype=np.float64), loss.shape)
        loss = np.where(weights != 0, loss * weights, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if mask is None:
        return loss.mean() if loss.size else 0.0
    total_weight = weights.sum()
    return loss.sum() / total_weight if total_weight != 0 else 0.0


# --- arrays across backends ---------------------------------------------------------


def backend_of(xp: ModuleType) -> str:
    for name, check in (
        ("numpy", array_api_compat.is_numpy_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("jax", array_api_compat.is_jax_namespace),
        ("dask", array_api_compat.is_dask_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
    ):
        if check(xp):
            return name
    msg = f"unrecognised namespace {xp!r}"
    raise AssertionError(msg)


def dtype_of(xp: ModuleType, name: str) -> Any:
    """``xp``'s dtype called ``name``; skips the test where ``xp`` lacks it."""
    import pytest

    dtype = getattr(xp, name, None)
    if dtype is None:
        pytest.skip(f"{backend_of(xp)} has no {name}")
    return dtype


def to_numpy(x: Array) -> np.ndarray:
    """A float64 (or bool/int) NumPy copy of any backend's array, computing Dask."""
    if array_api_compat.is_dask_array(x):
        x = x.compute()
    if array_api_compat.is_torch_array(x):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.double()
        return x.numpy()
    if array_api_compat.is_cupy_array(x):
        out = x.get()
    elif array_api_compat.is_jax_array(x) or array_api_compat.is_numpy_array(x):
        out = np.asarray(x)
    else:  # array-api-strict and other standard-only arrays
        out = np.from_dlpack(x)
    return (
        out.astype(np.float64)
        if out.dtype.kind == "f" or out.dtype.name == "bfloat16"
        else out
    )


def asarray(
    xp: ModuleType, values: Any, dtype: Any = None, *, device: Any = None
) -> Array:
    """``values`` (anything NumPy takes) as an array of ``xp``."""
    values = np.asarray(values)
    if dtype is None:
        return (
            xp.asarray(values, device=device)
            if device is not None
            else xp.asarray(values)
        )
    # through float64 first: not every backend converts NumPy arrays to bfloat16 directly
    array = xp.asarray(
        values.astype(np.float64) if values.dtype.kind in "fiub" else values
    )
    array = xp.astype(array, dtype)
    return array if device is None else array_api_compat.to_device(array, device)


# reductions every loss refuses, with the name of the type its error shows: arrays
# too, as one equal to a name passed as that name on some backends and failed deep
# inside others (PyTorch's fused calls)
REFUSED_REDUCTIONS = [
    pytest.param("avg", "str", id="avg"),
    pytest.param("MEAN", "str", id="MEAN"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param(1, "int", id="int"),
    pytest.param(np.asarray("sum"), "numpy.ndarray", id="0-d-array"),
    pytest.param(np.asarray(["sum", "mean"]), "numpy.ndarray", id="array"),
]


def assert_reduction_refused(
    call: Callable[[object], object], reduction: object, type_name: str
) -> None:
    """``call(reduction)`` refuses ``reduction``, one of :data:`REFUSED_REDUCTIONS`: a
    name it doesn't know with a ValueError; anything but a str with a TypeError that
    names its type, raised alone (not during the set lookup's TypeError)."""
    expected = "one of 'mean', 'sum' or 'none'"
    if type_name == "str":
        error: type[Exception] = ValueError
        message = f"reduction must be {expected}"
    else:
        error = TypeError
        message = f"reduction must be a str, {expected}, got "
        if reduction is not None:
            message += type_name
    with pytest.raises(error, match=re.escape(message)) as raised:
        call(reduction)
    assert repr(reduction) in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__ or raised.value.__context__ is None


def assert_close(
    actual: Array,
    expected: Any,
    *,
    xp: ModuleType,
    like: Array,
    shape: tuple[int, ...] = (),
    dtype: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """``actual`` is ``expected`` in ``xp``'s namespace, on ``like``'s device,
    with ``like``'s dtype (or ``dtype``) and the given ``shape``."""
    assert array_api_compat.array_namespace(actual) is xp, (
        f"namespace {array_api_compat.array_namespace(actual)!r}, expected {xp!r}"
    )
    expected_dtype = like.dtype if dtype is None else dtype
    assert actual.dtype == expected_dtype, (
        f"dtype {actual.dtype}, expected {expected_dtype}"
    )
    assert tuple(actual.shape) == tuple(shape), (
        f"shape {actual.shape}, expected {shape}"
    )
    if not array_api_compat.is_dask_array(actual):
        assert array_api_compat.device(actual) == array_api_compat.device(like), (
            f"device {array_api_compat.device(actual)}, expected {array_api_compat.device(like)}"
        )
    name = str(actual.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(
        to_numpy(actual),
        np.asarray(expected, dtype=np.float64),
        rtol=RTOL.get(name, 1e-12) if rtol is None else rtol,
        atol=ATOL.get(name, 1e-13) if atol is None else atol,
    )


def child_environment(**variables: str) -> dict[str, str]:
    """The environment for a child Python that imports this arraylosses first.

    That is ``src/`` in a checkout, site-packages under nox; the child finds
    everything else this process finds, and gets ``variables`` besides.
    """
    package_root = str(Path(arraylosses.__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    path = os.pathsep.join(entry for entry in (package_root, *inherited) if entry)
    return {**os.environ, "PYTHONPATH": path, **variables}


# --- the losses as test cases ---------------------------------------------------------


class Case(NamedTuple):
    """One loss with its options and its float64 reference."""

    id: str
    name: str  # the function's name in arraylosses
    reference: Callable[..., np.ndarray]  # elementwise L, Spotlight's formula
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def loss(self) -> Callable[..., Any]:
        """The package's own function, not a test module's tagged global."""
        return getattr(arraylosses, self.name)

    @property
    def negatives_axis(self) -> bool:
        return self.name == "adaptive_hinge_loss"

    @property
    def implicit(self) -> bool:
        return self.name in IMPLICIT_NAMES


IMPLICIT_NAMES = frozenset(
    {"pointwise_loss", "bpr_loss", "hinge_loss", "adaptive_hinge_loss"}
)

# every loss, with a non-default margin and both Poisson inputs
CASES = (
    Case("pointwise", "pointwise_loss", ref_pointwise),
    Case("bpr", "bpr_loss", ref_bpr),
    Case("hinge-margin", "hinge_loss", ref_hinge, (("margin", 0.5),)),
    Case("adaptive_hinge", "adaptive_hinge_loss", ref_adaptive_hinge),
    Case("regression", "regression_loss", ref_regression),
    Case("poisson", "poisson_loss", ref_poisson),
    Case("poisson-log", "poisson_loss", ref_poisson, (("log_input", True),)),
    Case("logistic", "logistic_loss", ref_logistic),
)
CASE_IDS = [case.id for case in CASES]


# --- Dask laziness ------------------------------------------------------------------


def _refuse_to_compute(dsk: Any, keys: Any, **kwargs: Any) -> None:  # noqa: ARG001 - a dask scheduler's signature
    msg = "a loss computed part of its Dask graph while building it"
    raise AssertionError(msg)


@contextlib.contextmanager
def computing_nothing() -> Iterator[None]:
    """Any compute inside (``.compute()``, ``bool()``, ``float()``, ``np.asarray``)
    goes to a Dask scheduler that raises."""
    import dask

    with dask.config.set(scheduler=_refuse_to_compute):
        yield
