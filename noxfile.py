#!/usr/bin/env python3
# /// script
# dependencies = ["nox>=2025.2.9"]
# ///
"""Task runner for arraylosses.

``nox`` with no arguments runs every default session: the test suite once per
backend environment (``tests-numpy``, ``tests-strict``, ``tests-python-3.10``
and ``-3.13``, ``tests-torch``, ``tests-jax``, ``tests-dask``, ``tests-cuda``;
the last skips itself where there is no NVIDIA GPU), ``lint``, ``conformance``
(the parity suite of ``conformance/`` on every CPU backend),
``conformance-cuda`` (the same on the GPU; it skips itself without one) and
``docs`` (the Sphinx site, its doctests, and the built pages checked in headless
Chromium; it needs Debian's ``chromium``). ``nox -t tests`` runs only the tests.
Arguments after ``--`` go to pytest, e.g. ``nox -s tests-torch -- -x -k bpr``,
or to ``python -m conformance``, e.g. ``nox -s conformance -- --dtypes float32``.
``nox -s bench``, never run by default, times the losses against hand-written
code (``benchmarks/``); arguments after ``--`` go to ``benchmarks/run.py``.
``nox -s scale``, never run by default either, runs the losses out of core on a
local Dask cluster (``benchmarks/scale.py``).

Every pip install is constrained by ``constraints/test.txt`` (it pins torch to
the CPU wheel on this project's machines). The plain virtualenv/pip backend is
used on purpose: uv does not see that wheel.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "virtualenv"

DIR = Path(__file__).parent.resolve()
PYPROJECT = nox.project.load_toml(DIR / "pyproject.toml")
CONSTRAINTS = str(DIR / "constraints" / "test.txt")
# requires-python's floor, and the newest Python these machines carry; NumPy and
# array-api-strict install anywhere, where PyTorch's CPU wheel here is for one
# Python. Where one is missing, nox skips its session, except on CI (where $CI is
# set, and .ci/run says --error-on-missing-interpreters), where that fails the run.
OTHER_PYTHONS = ["3.10", "3.13"]
# PyTorch, CuPy and JAX all on CUDA 13, whose libraries come from PyPI (PyTorch's
# default wheel, the `[ctk]` and `[cuda13]` extras), so that one set of them is
# loaded and only the NVIDIA driver has to be on the machine. `===` takes PyTorch's
# default build where the constraint alone could take a `+cpu` wheel at hand. The
# package's `cupy` extra names CuPy's source distribution, which needs a compiler.
CUDA_LIBRARIES = ("torch===2.13.0", "cupy-cuda13x[ctk]", "jax[cuda13]")
# the three share the GPU in one process: JAX must not take 75% of it up front
SHARED_GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def _install(session: nox.Session, *requirements: str) -> None:
    """Install ``requirements`` in one pip call, under the test constraints."""
    session.install("-c", CONSTRAINTS, *requirements)


def _run_tests(
    session: nox.Session,
    *requirements: str,
    backends: tuple[str, ...],
    env: dict[str, str] | None = None,
) -> None:
    """Install the package (not editable), the test group and ``requirements``,
    then run pytest over exactly ``backends``, with ``env`` added."""
    _install(
        session,
        *requirements,
        *nox.project.dependency_groups(PYPROJECT, "test"),
    )
    session.run(
        "pytest",
        *session.posargs,
        env={
            # The conftest parametrises the `xp` fixture over exactly these
            # and fails if one of them cannot be used here.
            "ARRAYLOSSES_TEST_BACKENDS": ",".join(backends),
            "HYPOTHESIS_PROFILE": "ci",
            **(env or {}),
        },
    )


def _run_conformance(
    session: nox.Session, *options: str, env: dict[str, str] | None = None
) -> None:
    """``python -m conformance`` with every backend and peer required, then
    ``options``, then the session's arguments."""
    report = Path(session.create_tmp()) / "conformance.json"
    session.run(
        "python",
        "-m",
        "conformance",
        "--backends",
        "all",
        "--require-peers",
        "--json",
        str(report),
        *options,
        *session.posargs,
        env=env,
    )


def _skip_without_gpu(session: nox.Session) -> None:
    """Skip ``session`` where there is no NVIDIA GPU, saying so."""
    if not _has_nvidia_gpu():
        session.skip("no NVIDIA GPU here (`nvidia-smi -L` lists none)")


def _has_nvidia_gpu() -> bool:
    """True where ``nvidia-smi -L`` lists at least one GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listing = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return listing.returncode == 0 and any(
        line.startswith("GPU ") for line in listing.stdout.splitlines()
    )


@nox.session(name="tests-numpy", tags=["tests"])
def tests_numpy(session: nox.Session) -> None:
    """Run the tests with NumPy as the only array library, and the demo's
    optional matplotlib and pyarrow (its plot and Parquet tests run here)."""
    _run_tests(session, ".[demo]", backends=("numpy",))


@nox.session(name="tests-strict", tags=["tests"])
def tests_strict(session: nox.Session) -> None:
    """Run the tests on NumPy and array-api-strict."""
    _run_tests(session, ".[strict]", backends=("numpy", "array_api_strict"))


@nox.session(name="tests-python", python=OTHER_PYTHONS, tags=["tests"])
def tests_python(session: nox.Session) -> None:
    """Run ``tests-strict`` under the oldest Python the package supports and the
    newest at hand; the other sessions use nox's own."""
    tests_strict(session)


@nox.session(name="tests-torch", tags=["tests"])
def tests_torch(session: nox.Session) -> None:
    """Run the tests on NumPy and PyTorch (CPU)."""
    _run_tests(session, ".[torch]", backends=("numpy", "torch"))


@nox.session(name="tests-jax", tags=["tests"])
def tests_jax(session: nox.Session) -> None:
    """Run the tests on NumPy and JAX (CPU)."""
    _run_tests(session, ".[jax]", "jax[cpu]", backends=("numpy", "jax"))


@nox.session(name="tests-dask", tags=["tests"])
def tests_dask(session: nox.Session) -> None:
    """Run the tests on NumPy and Dask, with a ``distributed`` local cluster."""
    _run_tests(session, ".[dask]", "distributed", backends=("numpy", "dask"))


@nox.session(name="tests-cuda", tags=["tests"])
def tests_cuda(session: nox.Session) -> None:
    """Run the tests on NumPy, and on CuPy, PyTorch and JAX with the tests' arrays
    on the GPU; skips without an NVIDIA GPU."""
    _skip_without_gpu(session)
    _run_tests(
        session,
        ".",
        *CUDA_LIBRARIES,
        backends=("numpy", "cupy", "torch_cuda", "jax_cuda"),
        env=SHARED_GPU_ENV,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), mypy --strict on src, and sp-repo-review."""
    _install(session, ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    # Exits non-zero when any check that is not ignored in pyproject.toml fails.
    session.run("sp-repo-review", ".")


@nox.session
def conformance(session: nox.Session) -> None:
    """The parity suite: every CPU backend against independent references.

    Installs the package (not editable), every CPU backend and both peers
    (torch.nn.functional, optax), then runs ``python -m conformance`` from the
    repository root with every backend and peer required; it prints the tables
    and writes its JSON report to ``.nox/conformance/tmp/conformance.json``.
    Arguments after ``--`` replace or add options, e.g. ``-- --dtypes float32``.
    """
    _install(session, ".", *nox.project.dependency_groups(PYPROJECT, "conformance"))
    _run_conformance(session)


@nox.session(name="conformance-cuda")
def conformance_cuda(session: nox.Session) -> None:
    """The parity suite with CuPy, PyTorch and JAX on the GPU; skips without one.

    Installs the package, NumPy (the references), optax and the three libraries
    built for CUDA 13, none of the CPU-only backends, then runs ``python -m
    conformance --device cuda`` as ``conformance`` runs it; the report goes to
    ``.nox/conformance-cuda/tmp/conformance.json``.
    """
    _skip_without_gpu(session)
    _install(session, ".", "numpy", "optax", *CUDA_LIBRARIES)
    _run_conformance(session, "--device", "cuda", env=SHARED_GPU_ENV)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation and check it, in a browser too.

    Installs the package (not editable) with NumPy and the ``docs`` group, then:
    builds the HTML into ``docs/_build/html`` with warnings as errors and
    nitpicky cross-references; runs every docstring example (and the guides'
    ``{doctest}`` blocks) with ``sphinx-build -b doctest``; and opens the built
    site in headless Chromium (``docs/check_site.py``), which fails on a missing
    image or a broken internal link. Chromium is not installed by pip: without
    Debian's package (``apt-get install chromium``) the session fails.
    """
    _install(session, ".[numpy]", *nox.project.dependency_groups(PYPROJECT, "docs"))
    build = DIR / "docs" / "_build"
    shutil.rmtree(build, ignore_errors=True)  # every run from nothing
    sphinx = ("sphinx-build", "-W", "--keep-going", "-n")
    session.run(*sphinx, "-q", "-b", "html", "docs", str(build / "html"))
    # not quiet: the doctest builder's summary counts the examples it ran
    session.run(*sphinx, "-b", "doctest", "docs", str(build / "doctest"))
    session.run("python", "docs/check_site.py", str(build / "html"))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time the losses against hand-written idioms; not run by plain ``nox``.

    Writes benchmarks/results/ (results.md, results.json, ratios.png, and without
    arguments breakdown.md) and prints the tables. Arguments after ``--`` go to
    the runner, e.g.
    ``nox -s bench -- --quick --backends numpy,torch --out /tmp/bench``.
    """
    _install(session, ".[numpy,torch,jax]", "jax[cpu]", "matplotlib")
    session.run("python", "benchmarks/run.py", *session.posargs)
    if not session.posargs:  # a full run: profile the cells that miss, step by step
        session.run("python", "benchmarks/breakdown.py")


@nox.session(default=False)
def scale(session: nox.Session) -> None:
    """Out of core: the losses over two lazily generated inputs of 8 GB each on a
    local Dask cluster, beside a NumPy loop; not run by plain ``nox``.

    Writes benchmarks/results/scale.md and scale.json and prints the table.
    Arguments after ``--`` go to ``benchmarks/scale.py``, e.g.
    ``nox -s scale -- --elements 100000000 --losses bpr``.
    """
    _install(session, ".[numpy,dask]", "distributed")
    session.run("python", "benchmarks/scale.py", *session.posargs)


if __name__ == "__main__":
    nox.main()
