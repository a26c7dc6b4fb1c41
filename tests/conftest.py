"""The one ``xp`` fixture: every test that takes it runs on every backend under test.

``ARRAYLOSSES_TEST_BACKENDS`` (comma-separated: numpy, array_api_strict, torch,
torch_cuda, jax, jax_cuda, dask, cupy) names the backends a run must exercise;
each nox session sets it, and a named backend that cannot be used fails the run
instead of being skipped. Unset, every backend that can be used here is: the
``_cuda`` ones and CuPy only where their library sees a GPU.

``jax`` keeps the arrays a test makes on the CPU even where JAX has a GPU, and
``torch`` leaves them on PyTorch's default, the CPU. ``torch_cuda`` and
``jax_cuda`` make them on the first GPU by running each test inside that
library's default-device context, which covers ``asarray``, the creation
functions and ``jax.jit``, not ``torch.from_numpy`` nor other threads.

On JAX, functions tagged with :func:`array_api_extra.testing.lazy_xp_function`
run under ``jax.jit``; on Dask they raise if they compute anything.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import pytest
from array_api_extra.testing import patch_lazy_xp_functions
from hypothesis import settings

BACKENDS = (
    "numpy",
    "array_api_strict",
    "torch",
    "torch_cuda",
    "jax",
    "jax_cuda",
    "dask",
    "cupy",
)

# the JAX platform whose first device holds each JAX backend's arrays
JAX_PLATFORMS = {"jax": "cpu", "jax_cuda": "cuda"}

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _namespace(backend: str) -> ModuleType:
    """The array API namespace of ``backend``; raises if it can't be used here."""
    if backend == "numpy":
        return importlib.import_module("array_api_compat.numpy")
    if backend == "array_api_strict":
        return importlib.import_module("array_api_strict")
    if backend in {"torch", "torch_cuda"}:
        torch = importlib.import_module("torch")
        if backend == "torch_cuda" and not torch.cuda.is_available():
            msg = "PyTorch sees no CUDA device"
            raise RuntimeError(msg)
        return importlib.import_module("array_api_compat.torch")
    if backend in JAX_PLATFORMS:
        jax = importlib.import_module("jax")
        jax.config.update("jax_enable_x64", True)  # float64 cases need it
        _jax_device(backend)  # raises where the platform has none
        return importlib.import_module("jax.numpy")
    if backend == "dask":
        importlib.import_module("dask.array")
        return importlib.import_module("array_api_compat.dask.array")
    if backend == "cupy":
        cupy = importlib.import_module("cupy")
        # an import succeeds without a GPU; only a device count tells
        if cupy.cuda.runtime.getDeviceCount() < 1:
            msg = "CuPy imports but sees no CUDA device"
            raise RuntimeError(msg)
        return importlib.import_module("array_api_compat.cupy")
    msg = f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}"
    raise ValueError(msg)


def _backend_params() -> list[object]:
    requested = os.environ.get("ARRAYLOSSES_TEST_BACKENDS")
    if requested:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        unknown = sorted(set(names) - set(BACKENDS))
        if unknown:
            msg = f"ARRAYLOSSES_TEST_BACKENDS names unknown backends {unknown}"
            raise pytest.UsageError(msg)
        return [pytest.param(name, id=name) for name in names]
    params: list[object] = []
    for name in BACKENDS:
        try:
            _namespace(name)
        except Exception as error:  # noqa: BLE001 - any failure means "not usable here"
            params.append(
                pytest.param(
                    name, id=name, marks=pytest.mark.skip(reason=f"{name}: {error}")
                )
            )
        else:
            params.append(pytest.param(name, id=name))
    return params


def _default_device(backend: str) -> contextlib.AbstractContextManager[object]:
    """Where arrays made without a device go while a test of ``backend`` runs."""
    if backend == "torch_cuda":
        return importlib.import_module("torch").device("cuda")
    if backend in JAX_PLATFORMS:
        # JAX's own default is its GPU wherever it has one
        return importlib.import_module("jax").default_device(_jax_device(backend))
    # PyTorch's default is the CPU; a context for it would slow every call
    return contextlib.nullcontext()


def _jax_device(backend: str) -> object:
    """The first device of ``backend``'s JAX platform; raises where it has none."""
    return importlib.import_module("jax").devices(JAX_PLATFORMS[backend])[0]


@pytest.fixture(params=_backend_params())
def xp(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The namespace of one backend (array-api-compat's wrapper where it has one)."""
    namespace = _namespace(request.param)
    with (
        _default_device(request.param),
        patch_lazy_xp_functions(request, xp=namespace),
    ):
        yield namespace
