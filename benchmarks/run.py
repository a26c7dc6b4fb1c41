#!/usr/bin/env python3
"""Time arraylosses against the code users write by hand, on every backend.

Run it with ``nox -s bench`` (which installs everything), or directly::

    python benchmarks/run.py [--backends numpy,torch,torch-autograd,jax,torch-compile]
                             [--sizes 256,4096,1000000] [--sequence 256x50]
                             [--losses bpr,hinge,...] [--quick] [--out DIR]

Each backend runs in its own process (so that one library's thread pools do
not meet another's); within it, ours and the idiom alternate call batch by
call batch (see ``harness.py``). It measures, per backend:

* the seven losses against the backend's idiom (``idioms.py``) at each size,
  and at Spotlight's sequence shape with a padding mask: median of per-round
  ratios ours / idiom;
* NumPy and PyTorch: dispatch and validation overhead, a whole call on
  1-element arrays less the same primitives called bare, with the boundary
  (``prepare``) alone beside it;
* peak memory of one call, ours against the idiom, at 1,000,000 elements;
* ``jax.jit`` and ``torch.compile``: hinge and regression at 10,000,000
  elements against one pass that reads both inputs (the memory floor).

It writes ``results.md``, ``results.json`` and ``ratios.png`` to ``--out``
and prints the Markdown. It exits 1 if any measurement failed (the tables say
which), never because a target was missed: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import timeit
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import idioms
import report

HERE = Path(__file__).resolve().parent
BACKENDS = ("numpy", "torch", "torch-autograd", "jax", "torch-compile")
DEFAULT_SIZES = (256, 4_096, 1_000_000)
DEFAULT_SEQUENCE = (256, 50)
MEMORY_SIZE = 1_000_000
FLOOR_SIZE = 10_000_000
FLOOR_LOSSES = ("hinge", "regression")
# the observed and predicted values agree with the idiom's to this relative tolerance
# (float32 sums of up to 10^7 terms, summed in different orders)
RTOL = 1e-4

Fn = Callable[..., Any]


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    if options.worker is not None:
        return _worker_main(options)
    return _orchestrate(options)


# --------------------------------------------------------------------------- CLI


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backends",
        type=_names(BACKENDS),
        default=BACKENDS,
        help=f"comma-separated, from {','.join(BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="comma-separated element counts of 1-D inputs (default: 256,4096,1000000)",
    )
    parser.add_argument(
        "--sequence",
        type=_shape,
        default=DEFAULT_SEQUENCE,
        help="BxT shape of the masked (batch, sequence) case, or 'none' (default: 256x50)",
    )
    parser.add_argument(
        "--losses",
        type=_names(idioms.LOSSES),
        default=idioms.LOSSES,
        help="comma-separated loss names (default: all seven)",
    )
    parser.add_argument(
        "--memory-size",
        type=int,
        default=MEMORY_SIZE,
        help="elements of the peak-memory comparison (default: 1000000)",
    )
    parser.add_argument(
        "--floor-size",
        type=int,
        default=FLOOR_SIZE,
        help="elements of the memory-floor comparison (default: 10000000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few rounds per comparison: a smoke run, not a measurement",
    )
    parser.add_argument(
        "--jax-dispatch",
        choices=("sync", "async"),
        default="sync",
        help="run each jitted call on the calling thread (sync, the default) or "
        "hand it to XLA's worker thread as JAX does by default on a CPU (async); "
        "see benchmarks/README.md",
    )
    parser.add_argument("--seed", type=int, default=20_240_901, help="input seed")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="directory for results.md, results.json, ratios.png "
        "(default: benchmarks/results)",
    )
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            msg = f"expected some of {', '.join(allowed)}; got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return names

    return parse


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(size.replace("_", "")) for size in text.split(",") if size)
    except ValueError:
        sizes = ()
    if any(size < 1 for size in sizes):
        sizes = ()
    if not sizes:
        msg = f"expected comma-separated positive integers; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def _shape(text: str) -> tuple[int, ...]:
    if text.lower() == "none":
        return ()
    try:
        batch, length = (int(part) for part in text.lower().split("x"))
    except ValueError:
        batch = length = 0
    if batch < 1 or length < 1:
        msg = f"expected BxT, e.g. 256x50, or 'none'; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return (batch, length)


# ------------------------------------------------------------------ orchestrator


def _orchestrate(options: argparse.Namespace) -> int:
    results: dict[str, Any] = {
        "environment": _environment(),
        "settings": {
            "sizes": list(options.sizes),
            "sequence": list(options.sequence),
            "losses": list(options.losses),
            "memory_size": options.memory_size,
            "floor_size": options.floor_size,
            "quick": options.quick,
            "seed": options.seed,
            "negatives": idioms.NEGATIVES,
        },
        "backends": {},
    }
    for backend in options.backends:
        _progress(f"== {backend} ==")
        load_before = _load_average()
        interpreter_before = _interpreter_loop_us()
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "result.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                *_common_arguments(options),
                "--worker",
                backend,
                "--worker-out",
                str(out),
            ]
            status = subprocess.run(command, check=False).returncode
            if status == 0 and out.exists():
                outcome = json.loads(out.read_text(encoding="utf-8"))
            else:
                outcome = {
                    "error": f"the {backend} process exited with status {status}; "
                    "its messages were printed above the tables"
                }
        outcome["load_average"] = {"before": load_before, "after": _load_average()}
        outcome["interpreter_loop_us"] = interpreter_before
        outcome["seconds"] = round(time.monotonic() - started, 1)
        _progress(f"== {backend}: {outcome['seconds']:.0f} s ==")
        results["backends"][backend] = outcome

    options.out.mkdir(parents=True, exist_ok=True)
    markdown = report.markdown(results)
    (options.out / "results.md").write_text(markdown, encoding="utf-8")
    (options.out / "results.json").write_text(
        json.dumps(results, indent=1) + "\n", encoding="utf-8"
    )
    written = "results.md and results.json"
    if importlib.util.find_spec("matplotlib") is None:
        _progress("ratios.png needs matplotlib, which is not installed: not drawn")
    else:
        report.plot(results, options.out / "ratios.png")
        written = "results.md, results.json and ratios.png"
    sys.stdout.write(markdown)
    _progress(f"wrote {written} to {options.out}")
    return 1 if report.errors(results) else 0


def _common_arguments(options: argparse.Namespace) -> list[str]:
    sequence = "x".join(map(str, options.sequence)) if options.sequence else "none"
    arguments = [
        "--sizes",
        ",".join(map(str, options.sizes)),
        "--sequence",
        sequence,
        "--losses",
        ",".join(options.losses),
        "--memory-size",
        str(options.memory_size),
        "--floor-size",
        str(options.floor_size),
        "--seed",
        str(options.seed),
        "--jax-dispatch",
        options.jax_dispatch,
        "--out",
        str(options.out),
    ]
    if options.quick:
        arguments.append("--quick")
    return arguments


def _environment() -> dict[str, Any]:
    versions = {}
    for distribution in (
        "arraylosses",
        "array-api-compat",
        "numpy",
        "torch",
        "jax",
        "jaxlib",
        "matplotlib",
    ):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = None
    spec = importlib.util.find_spec("arraylosses")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _processor(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "arraylosses_path": None if spec is None else spec.origin,
        "commit": report.git_commit(),
    }


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _load_average() -> list[float] | None:
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def _interpreter_loop_us() -> float:
    """Microseconds CPython takes for ``sum(range(1000))``, the best of five: how fast
    this machine runs the interpreter, to compare runs on different machines (the
    eager cells at small sizes time mostly Python and per-call dispatch)."""
    rounds = 2000
    best = min(timeit.repeat("sum(range(1000))", number=rounds, repeat=5))
    return round(best / rounds * 1e6, 2)


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------ worker


@dataclass
class Backend:
    """How to run ours, the idiom and the floor on one library."""

    name: str
    convert: Callable[[Any], Any]
    ours: Callable[[str], Fn]
    idiom: Callable[[str], Fn]
    timed: Callable[[Fn], Fn]
    peak_bytes: Callable[[Fn, tuple[Any, ...]], int]
    memory_method: str
    measures_boundary: bool = False
    measures_memory: bool = True
    # marks the arguments a call differentiates, after conversion, where it does
    differentiate: Callable[[str, tuple[Any, ...]], None] = lambda _loss, _args: None
    # the names of the library's own operations a call runs, in order, where the
    # library can list them
    operations: Callable[[Fn, tuple[Any, ...]], list[str]] | None = None
    floor: Callable[[], Fn] | None = None
    reset: Callable[[], None] = lambda: None
    info: dict[str, Any] = field(default_factory=dict)
    # runs a function's first call; returns its value and, where the backend
    # compiles, how many graph breaks that compilation had (else None)
    first_call: Callable[[Fn, tuple[Any, ...]], tuple[Any, int | None]] = (
        lambda fn, args: (fn(*args), None)
    )


def _loss(name: str) -> Fn:
    import arraylosses

    function: Fn = getattr(arraylosses, f"{name}_loss")
    return function


def _numpy_backend() -> Backend:
    import numpy as np

    ours_by_name = {name: _loss(name) for name in idioms.LOSSES}
    idiom_by_name = idioms.numpy_idioms()
    return Backend(
        name="numpy",
        convert=np.ascontiguousarray,
        ours=ours_by_name.__getitem__,
        idiom=idiom_by_name.__getitem__,
        timed=lambda fn: fn,
        peak_bytes=harness.numpy_peak_bytes,
        memory_method="tracemalloc",
        measures_boundary=True,
    )


def _torch_backend(*, compiled: bool) -> Backend:
    import torch
    import torch._dynamo

    idiom_by_name = idioms.torch_idioms()
    info = {
        "threads": torch.get_num_threads(),
        # the widest vector instructions ATen's CPU kernels dispatch to here
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }

    def convert(array: Any) -> Any:
        # a tensor of PyTorch's own allocation, 64-byte aligned as users' tensors
        # are: from_numpy keeps NumPy's 16-byte alignment, under which one of two
        # compiled kernels that differ in a single instruction (the hinge's at
        # 10**6) ran 10% slower than the other, and 1% slower when aligned
        return torch.from_numpy(array).clone()

    if not compiled:
        return Backend(
            name="torch",
            convert=convert,
            ours=_loss,
            idiom=idiom_by_name.__getitem__,
            timed=lambda fn: fn,
            peak_bytes=harness.torch_peak_bytes,
            memory_method="torch.profiler, profile_memory",
            measures_boundary=True,
            operations=harness.torch_operations,
            info=info,
        )

    from torch._dynamo.utils import counters

    def compile_(fn: Fn) -> Fn:
        # the default inductor backend, one static shape per compilation
        compiled_fn: Fn = torch.compile(fn, dynamic=False)
        return compiled_fn

    def first_call(fn: Fn, args: tuple[Any, ...]) -> tuple[Any, int | None]:
        counters.clear()
        value = fn(*args)
        return value, sum(counters["graph_break"].values())

    # A loss compiled before any eager call resolves its namespace while
    # Dynamo traces: record what that costs, then resolve it eagerly once, so
    # that every cell below measures the same steady state whatever its order.
    small = (torch.zeros(4), torch.ones(4))
    try:
        _, info["graph_breaks_before_any_eager_call"] = first_call(
            compile_(_loss("bpr")), small
        )
    except Exception as error:  # noqa: BLE001  # the report shows it
        traceback.print_exc()
        info["graph_breaks_before_any_eager_call"] = f"failed ({error!r})"[:200]
    torch._dynamo.reset()
    for name in idioms.LOSSES:
        first = torch.zeros((4, 4)) if name == "adaptive_hinge" else small[1]
        _loss(name)(small[0], first)
        _loss(name)(small[0], first, small[0] > 0)

    return Backend(
        name="torch-compile",
        convert=convert,
        ours=lambda name: compile_(_loss(name)),
        idiom=lambda name: compile_(idiom_by_name[name]),
        timed=lambda fn: fn,
        peak_bytes=harness.torch_peak_bytes,
        memory_method="torch.profiler, profile_memory",
        floor=lambda: compile_(idioms.torch_floor),
        # a fresh cache per comparison: no guard list grows across shapes and
        # losses, and no recompile limit sends a function back to eager
        reset=torch._dynamo.reset,
        info=info,
        first_call=first_call,
    )


def _jax_backend(dispatch: str) -> Backend:
    import jax

    # synchronous: a call runs on the calling thread, so a cell times the compiled
    # program and JAX's dispatch, not a wake-up of XLA's worker thread (README)
    jax.config.update("jax_cpu_enable_async_dispatch", dispatch == "async")
    idiom_by_name = idioms.jax_idioms()

    def convert(array: Any) -> Any:
        return jax.block_until_ready(jax.device_put(array))

    def timed(jitted: Fn) -> Fn:
        def call(*args: Any) -> Any:
            return jitted(*args).block_until_ready()

        return call

    return Backend(
        name="jax",
        convert=convert,
        ours=lambda name: jax.jit(_loss(name)),
        idiom=lambda name: jax.jit(idiom_by_name[name]),
        timed=timed,
        peak_bytes=harness.jax_peak_bytes,
        memory_method="XLA memory_analysis()",
        floor=lambda: jax.jit(idioms.jax_floor),
        info={
            "devices": [str(device) for device in jax.devices()],
            "dispatch": dispatch,
        },
    )


def _torch_autograd_backend() -> Backend:
    """PyTorch eager, each side timed for its loss and the loss's gradient with
    respect to the predictions (``torch.autograd.grad``), as a training step
    computes them: the predictions require gradients, the observations and the
    mask do not."""
    import torch

    eager = _torch_backend(compiled=False)

    def predictions(loss: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args[:2] if loss in idioms.IMPLICIT else args[1:2]

    def differentiate(loss: str, args: tuple[Any, ...]) -> None:
        for array in predictions(loss, args):
            array.requires_grad_(True)

    def with_gradient(loss: str, fn: Fn) -> Fn:
        def step(*args: Any) -> Any:
            value = fn(*args)
            torch.autograd.grad(value, predictions(loss, args))
            return value.detach()

        return step

    return Backend(
        name="torch-autograd",
        convert=eager.convert,
        ours=lambda name: with_gradient(name, eager.ours(name)),
        idiom=lambda name: with_gradient(name, eager.idiom(name)),
        timed=lambda fn: fn,
        # a training step's peak: the forward pass, what autograd saves, the backward
        peak_bytes=harness.torch_peak_bytes,
        memory_method="torch.profiler, profile_memory, with the gradient",
        differentiate=differentiate,
        info=eager.info,
    )


def _make_backend(options: argparse.Namespace) -> Backend:
    """The backend this worker process times, ``options.worker``."""
    name = options.worker
    if name == "numpy":
        return _numpy_backend()
    if name == "jax":
        return _jax_backend(options.jax_dispatch)
    if name == "torch-autograd":
        return _torch_autograd_backend()
    return _torch_backend(compiled=name == "torch-compile")


def _inputs(
    loss: str, shape: tuple[int, ...], *, masked: bool, seed: Sequence[int]
) -> tuple[Any, ...]:
    """Seeded float32 inputs: predictions N(0, 1), ratings 1..5, observations ±1."""
    import numpy as np

    rng = np.random.default_rng(list(seed))
    float32 = np.float32
    if loss in idioms.IMPLICIT:
        first = rng.standard_normal(shape, dtype=float32)
        negatives = (idioms.NEGATIVES, *shape) if loss == "adaptive_hinge" else shape
        second = rng.standard_normal(negatives, dtype=float32)
    elif loss == "logistic":
        first = rng.choice(np.asarray([-1.0, 1.0], dtype=float32), size=shape)
        second = rng.standard_normal(shape, dtype=float32)
    else:
        first = rng.integers(1, 6, size=shape).astype(float32)
        low = 0.5 if loss == "poisson" else 1.0  # Poisson: a positive rate
        second = rng.uniform(low, 5.0, size=shape).astype(float32)
    if not masked:
        return (first, second)
    # a padding mask: each sequence has a random length, True on its real entries
    batch, length = shape
    lengths = rng.integers(1, length + 1, size=batch)
    mask = np.arange(length)[None, :] < lengths[:, None]
    return (first, second, mask)


def _seed(options: argparse.Namespace, *parts: object) -> list[int]:
    text = "/".join(map(str, parts))
    return [options.seed, *text.encode()]


def _worker_main(options: argparse.Namespace) -> int:
    backend = _make_backend(options)
    plan = harness.QUICK if options.quick else harness.FULL
    outcome: dict[str, Any] = {
        "name": backend.name,
        "info": backend.info,
        "memory_method": backend.memory_method,
        "rounds": {"max": plan.max_rounds, "min": plan.min_rounds},
        "ratios": [],
        "memory": [],
        "overhead": [],
        "floor": [],
    }
    cases: list[tuple[tuple[int, ...], bool]] = [
        ((size,), False) for size in options.sizes
    ]
    if options.sequence:
        cases.append((tuple(options.sequence), True))

    for shape, masked in cases:
        for loss in options.losses:
            label = {"loss": loss, **_case_fields(shape, masked)}
            measure_memory = (
                backend.measures_memory
                and not masked
                and shape == (options.memory_size,)
            )
            cell = _guarded(
                backend,
                label,
                _ratio_cell,
                backend,
                plan,
                options,
                loss,
                shape,
                masked,
                measure_memory,
            )
            memory = cell.pop("memory", None)
            outcome["ratios"].append(cell)
            _progress(_describe(backend.name, cell))
            if measure_memory:
                memory = memory or {**label, "error": cell.get("error", "?")}
                outcome["memory"].append(memory)
                _progress(_describe(backend.name, memory))

    if backend.measures_memory and options.memory_size not in options.sizes:
        for loss in options.losses:
            label = {"loss": loss, **_case_fields((options.memory_size,), False)}
            cell = _guarded(backend, label, _memory_cell, backend, options, loss)
            outcome["memory"].append(cell)
            _progress(_describe(backend.name, cell))

    if backend.measures_boundary:
        for loss in options.losses:
            label = {"loss": loss, **_case_fields((1,), False)}
            cell = _guarded(
                backend, label, _overhead_cell, backend, plan, options, loss
            )
            outcome["overhead"].append(cell)
            _progress(_describe(backend.name, cell))

    if backend.floor is not None:
        for loss in FLOOR_LOSSES:
            if loss in options.losses:
                label = {"loss": loss, **_case_fields((options.floor_size,), False)}
                cell = _guarded(
                    backend, label, _floor_cell, backend, plan, options, loss
                )
                outcome["floor"].append(cell)
                _progress(_describe(backend.name, cell))

    options.worker_out.write_text(json.dumps(outcome), encoding="utf-8")
    return 0


def _guarded(
    backend: Backend,
    label: dict[str, Any],
    measure: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """Run one measurement; a failure becomes an ``error`` entry, not a crash."""
    try:
        return measure(*args)
    except Exception as error:  # noqa: BLE001  # the table reports it
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return {**label, "error": message}
    finally:
        backend.reset()


def _case_fields(shape: tuple[int, ...], masked: bool) -> dict[str, Any]:
    return {"shape": list(shape), "elements": math.prod(shape), "masked": masked}


def _prepare(
    backend: Backend,
    options: argparse.Namespace,
    loss: str,
    shape: tuple[int, ...],
    *,
    masked: bool,
) -> tuple[Fn, Fn, tuple[Any, ...], dict[str, Any]]:
    """Build ours and the idiom on one case's inputs, run each once, compare values."""
    backend.reset()
    arrays = _inputs(
        loss, shape, masked=masked, seed=_seed(options, loss, shape, masked)
    )
    args = tuple(backend.convert(array) for array in arrays)
    backend.differentiate(loss, args)
    ours, idiom = backend.ours(loss), backend.idiom(loss)
    # the first calls also compile, under jax.jit and torch.compile
    ours_value, ours_breaks = backend.first_call(ours, args)
    idiom_value, idiom_breaks = backend.first_call(idiom, args)
    check = {
        "ours_value": float(ours_value),
        "idiom_value": float(idiom_value),
        "values_agree": math.isclose(
            float(ours_value), float(idiom_value), rel_tol=RTOL, abs_tol=1e-6
        ),
    }
    if ours_breaks is not None:
        check["graph_breaks"] = {"ours": ours_breaks, "idiom": idiom_breaks}
    return ours, idiom, args, check


def _ratio_cell(
    backend: Backend,
    plan: harness.Plan,
    options: argparse.Namespace,
    loss: str,
    shape: tuple[int, ...],
    masked: bool,
    measure_memory: bool,
) -> dict[str, Any]:
    ours, idiom, args, check = _prepare(backend, options, loss, shape, masked=masked)
    timing = harness.interleave(
        [(backend.timed(ours), args), (backend.timed(idiom), args)], plan
    )
    ratio, low, high = timing.ratio(0, 1)
    cell = {
        "loss": loss,
        **_case_fields(shape, masked),
        "inner": timing.inner,
        "rounds": timing.rounds,
        "ours_us": timing.median_us(0),
        "idiom_us": timing.median_us(1),
        "ratio": ratio,
        "ratio_low": low,
        "ratio_high": high,
        **check,
    }
    if measure_memory:
        try:
            cell["memory"] = _memory_of(backend, loss, shape, ours, idiom, args)
        except Exception as error:  # noqa: BLE001  # the table reports it
            traceback.print_exc()
            message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            cell["memory"] = {
                "loss": loss,
                **_case_fields(shape, masked),
                "error": message,
            }
    return cell


def _memory_cell(
    backend: Backend, options: argparse.Namespace, loss: str
) -> dict[str, Any]:
    shape = (options.memory_size,)
    ours, idiom, args, _ = _prepare(backend, options, loss, shape, masked=False)
    return _memory_of(backend, loss, shape, ours, idiom, args)


def _memory_of(
    backend: Backend,
    loss: str,
    shape: tuple[int, ...],
    ours: Fn,
    idiom: Fn,
    args: tuple[Any, ...],
) -> dict[str, Any]:
    return {
        "loss": loss,
        "elements": math.prod(shape),
        "input_bytes": sum(int(array.nbytes) for array in args),
        "ours_bytes": backend.peak_bytes(ours, args),
        "idiom_bytes": backend.peak_bytes(idiom, args),
    }


def boundary(loss: str) -> Fn:
    """What a call of ``loss`` does before its math: arraylosses' private
    ``prepare``, which resolves the namespace and checks devices, dtypes and
    shapes (the package's own function, so it can't drift from what it does),
    through a closure: one Python call more than the loss makes."""
    from arraylosses._call import prepare

    names = ("first", "second")
    explicit = loss in ("regression", "poisson", "logistic")
    stacked = loss == "adaptive_hinge"

    def checked(first: Any, second: Any, mask: Any = None) -> Any:
        return prepare(
            first,
            second,
            mask,
            "mean",
            names=names,
            first_is_rating=explicit,
            second_has_negatives_axis=stacked,
        )

    return checked


def _bare(loss: str, backend: Any) -> Fn:
    """A call of ``loss`` without the package's Python layer: ``backend``'s
    primitives (arraylosses' private ``Backend`` of the arrays) that the loss
    runs for a mean without a mask, composed as the loss composes them, on
    arrays it would not cast. The public function, ``prepare``, the call's
    record and ``finish`` are what is left out."""
    xp = backend.xp

    def fused_or(name: str, elementwise: Fn) -> Fn:
        fused = backend.fused.get(name)
        if fused is None:
            return lambda first, second: backend.mean(elementwise(first, second))
        return lambda first, second: fused(first, second, "mean")

    compositions: dict[str, Fn] = {
        "pointwise": lambda p, n: backend.mean(
            backend.add(backend.sigmoid_of_negative(p), backend.sigmoid(n))
        ),
        "bpr": lambda p, n: backend.mean(backend.sigmoid_of_difference(n, p)),
        "hinge": lambda p, n: backend.mean(
            backend.relu(backend.add_scalar(n - p, 1.0))
        ),
        "adaptive_hinge": lambda p, n: backend.mean(
            backend.relu(backend.add_scalar(backend.max_over_first_axis(n) - p, 1.0))
        ),
        "regression": fused_or(
            "regression", lambda y, y_hat: backend.square(y_hat - y)
        ),
        "poisson": lambda y, y_hat: backend.mean(
            backend.subtract_product(y_hat, y, xp.log(y_hat))
        ),
        "logistic": fused_or("logistic", backend.logistic),
    }
    return compositions[loss]


def _overhead_cell(
    backend: Backend, plan: harness.Plan, options: argparse.Namespace, loss: str
) -> dict[str, Any]:
    from arraylosses._namespace import backend_of

    ours, idiom, args, check = _prepare(backend, options, loss, (1,), masked=False)
    bare = _bare(loss, backend_of(args[0], "first"))
    # the composition must be the loss's own: the same primitives in the same
    # order, the same bits, and on PyTorch the same ATen operations. Recorded, it
    # looks its Backend up inside the call, as the loss does, to meet the recording
    # copy that _primitives_called puts in the cache; timed, it holds the real one
    same = _primitives_called(ours, args) == _primitives_called(
        lambda *arrays: _bare(loss, backend_of(arrays[0], "first"))(*arrays), args
    ) and _bits(ours(*args)) == _bits(bare(*args))
    if backend.operations is not None:
        same = same and backend.operations(ours, args) == backend.operations(bare, args)
    boundary_of_loss = boundary(loss)
    timing = harness.interleave(
        [(ours, args), (bare, args), (boundary_of_loss, args), (idiom, args)], plan
    )
    overhead, low, high = harness.median_ci(
        [
            whole - below
            for whole, below in zip(
                timing.per_call_ns[0], timing.per_call_ns[1], strict=True
            )
        ]
    )
    return {
        "loss": loss,
        "inner": timing.inner,
        "rounds": timing.rounds,
        "ours_us": timing.median_us(0),
        "bare_us": timing.median_us(1),
        "overhead_us": overhead / 1e3,
        "overhead_low_us": low / 1e3,
        "overhead_high_us": high / 1e3,
        "bare_is_the_loss": same,
        "prepare_us": timing.median_us(2),
        "idiom_us": timing.median_us(3),
        **check,
    }


def _primitives_called(fn: Fn, args: tuple[Any, ...]) -> list[str]:
    """The names of the ``Backend`` primitives one call of ``fn`` runs, in order:
    the call meets, through the package's cache of backends, a copy of its
    arrays' ``Backend`` whose every primitive records its name."""
    import dataclasses

    from arraylosses import _namespace

    backend = _namespace.backend_of(args[0], "first")
    names: list[str] = []

    def recorded(name: str, primitive: Fn) -> Fn:
        def call(*arguments: Any, **options: Any) -> Any:
            names.append(name)
            return primitive(*arguments, **options)

        return call

    primitives = {
        field.name: recorded(field.name, getattr(backend, field.name))
        for field in dataclasses.fields(backend)
        if field.type == "Primitive"
    }
    fused = {name: recorded(f"fused {name}", f) for name, f in backend.fused.items()}
    recorder = dataclasses.replace(backend, **primitives, fused=fused)
    key = id(type(args[0]))
    cached = _namespace.BACKENDS.get(key)
    _namespace.BACKENDS[key] = recorder
    try:
        fn(*args)
    finally:
        if cached is None:
            del _namespace.BACKENDS[key]
        else:
            _namespace.BACKENDS[key] = cached
    return names


def _bits(value: Any) -> bytes:
    """The bytes of a 0-d result: equal bits, where == would call -0.0 and 0.0 equal."""
    import numpy as np

    return np.asarray(value).tobytes()


def _floor_cell(
    backend: Backend, plan: harness.Plan, options: argparse.Namespace, loss: str
) -> dict[str, Any]:
    assert backend.floor is not None  # only called where there is a floor
    shape = (options.floor_size,)
    ours, idiom, args, check = _prepare(backend, options, loss, shape, masked=False)
    floor = backend.floor()
    floor(*args)  # compile
    timing = harness.interleave(
        [
            (backend.timed(ours), args),
            (backend.timed(idiom), args),
            (backend.timed(floor), args),
        ],
        plan,
    )
    ratio, low, high = timing.ratio(0, 2)
    idiom_ratio, _, _ = timing.ratio(1, 2)
    return {
        "loss": loss,
        "elements": options.floor_size,
        "inner": timing.inner,
        "rounds": timing.rounds,
        "ours_us": timing.median_us(0),
        "idiom_us": timing.median_us(1),
        "floor_us": timing.median_us(2),
        "ratio": ratio,
        "ratio_low": low,
        "ratio_high": high,
        "idiom_ratio": idiom_ratio,
        **check,
    }


def _describe(backend: str, cell: dict[str, Any]) -> str:
    head = f"{backend:>13}  {cell.get('loss', '?'):<14}"
    if "error" in cell:
        return f"{head} ERROR {cell['error']}"
    if "overhead_us" in cell:
        mismatch = "" if cell["bare_is_the_loss"] else " (bare is not the loss's own)"
        return f"{head} 1 element   overhead {cell['overhead_us']:+.2f} µs{mismatch}"
    if "floor_us" in cell:
        return f"{head} {cell['elements']:>11,}  ours / floor {cell['ratio']:.2f}"
    if "ours_bytes" in cell:
        return (
            f"{head} {cell['elements']:>11,}  peak ours {cell['ours_bytes']:,} B, "
            f"idiom {cell['idiom_bytes']:,} B"
        )
    case = report.case_label(cell)
    return f"{head} {case:>16}  ours / idiom {cell['ratio']:.2f}"


if __name__ == "__main__":
    sys.exit(main())
