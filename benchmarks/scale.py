#!/usr/bin/env python3
"""Out of core: the losses over inputs larger than any worker's memory, on Dask.

Run it with ``nox -s scale`` (which installs everything), or directly where
arraylosses, NumPy, Dask and ``distributed`` are installed::

    python benchmarks/scale.py [--elements 2000000000] [--chunk 25000000]
                               [--workers 2] [--memory-limit 2GiB]
                               [--losses bpr,hinge,...] [--out DIR]

Two float32 inputs of ``--elements`` each are generated lazily, chunk by chunk
(8 GB apiece at the default 2×10^9, never materialised), on a local cluster of
``--workers`` single-threaded worker processes bound to loopback, each with
``--memory-limit``. Each loss is computed over them with its mean reduction,
and timed; a sampler polls the workers' memory (RSS) meanwhile. The same
computation then runs chunk by chunk in a plain NumPy loop in one process (the
same chunks, from the same per-chunk seeds, summed as it goes), for the time a
user would spend without Dask, and the two values are compared.

It prints a Markdown table (wall time, throughput in elements per second, peak
worker memory, the value, and the NumPy loop's time, memory and value) and
writes it, with a JSON copy, to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from report import git_commit

import arraylosses

HERE = Path(__file__).resolve().parent
GIB = 1 << 30

# Each loss as a call on two float32 inputs: u, uniform on [0, 1), and z,
# standard normal. The explicit losses read u as an observation (a rating of
# 0 to 5 for regression and Poisson, whose prediction is then a log-rate; a
# 0/1 clip for the logistic loss); the adaptive hinge sees z as one negative.
CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "pointwise": arraylosses.pointwise_loss,
    "bpr": arraylosses.bpr_loss,
    "hinge": arraylosses.hinge_loss,
    "adaptive_hinge": lambda u, z: arraylosses.adaptive_hinge_loss(u, z[None, :]),
    "regression": lambda u, z: arraylosses.regression_loss(5 * u, z),
    "poisson": lambda u, z: arraylosses.poisson_loss(5 * u, z, log_input=True),
    "logistic": arraylosses.logistic_loss,
}


def chunk_input(seed: int, which: int, index: int, size: int) -> np.ndarray:
    """Chunk number ``index`` of input ``which`` (0: uniform, 1: normal), from its
    own seed: any process that asks for one chunk gets the same numbers."""
    rng = np.random.default_rng([seed, which, index])
    if which == 0:
        return rng.random(size, dtype=np.float32)
    return rng.standard_normal(size, dtype=np.float32)


def _chunk_sizes(elements: int, chunk: int) -> tuple[int, ...]:
    full, rest = divmod(elements, chunk)
    return (chunk,) * full + ((rest,) if rest else ())


def lazy_inputs(seed: int, elements: int, chunk: int) -> tuple[Any, Any]:
    """The two inputs as Dask arrays whose chunks are made where they are used."""
    import dask.array as da

    sizes = _chunk_sizes(elements, chunk)

    def make(which: int, block_id: tuple[int] = (0,)) -> np.ndarray:
        index = block_id[0]
        return chunk_input(seed, which, index, sizes[index])

    meta = np.empty(0, dtype=np.float32)
    return tuple(  # type: ignore[return-value]
        da.map_blocks(make, which, chunks=(sizes,), dtype=np.float32, meta=meta)
        for which in (0, 1)
    )


@contextlib.contextmanager
def worker_memory_peaks(client: Any, every: float = 0.2) -> Iterator[dict[str, int]]:
    """Poll every worker's memory (RSS) while the block runs; yields the peak of
    each worker so far, complete once the block has finished."""
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        for worker, rss in client.run(_rss).items():
            peaks[worker] = max(peaks.get(worker, 0), rss)

    def poll() -> None:
        while not stop.wait(every):
            sample()

    sampler = threading.Thread(target=poll, daemon=True)
    sample()
    sampler.start()
    try:
        yield peaks
    finally:
        stop.set()
        sampler.join()
        sample()


def _rss() -> int:
    import psutil  # distributed's own dependency

    return int(psutil.Process().memory_info().rss)


def run_dask(
    client: Any, name: str, seed: int, elements: int, chunk: int
) -> dict[str, Any]:
    uniform, normal = lazy_inputs(seed, elements, chunk)
    loss = CALLS[name](uniform, normal)
    with worker_memory_peaks(client) as peaks:
        start = time.perf_counter()
        value = float(client.compute(loss).result())
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "value": value,
        "peak_worker_bytes": max(peaks.values()),
        "tasks": len(loss.__dask_graph__()),
    }


def _numpy_loop(name: str, seed: int, elements: int, chunk: int, out: Any) -> None:
    start = time.perf_counter()
    total = 0.0
    for index, size in enumerate(_chunk_sizes(elements, chunk)):
        uniform = chunk_input(seed, 0, index, size)
        normal = chunk_input(seed, 1, index, size)
        # the chunk's mean weighted by its size: the mean over all, chunk by chunk
        total += float(CALLS[name](uniform, normal)) * size
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    out.put({"seconds": seconds, "value": total / elements, "peak_bytes": peak})


def run_numpy(name: str, seed: int, elements: int, chunk: int) -> dict[str, Any]:
    """The NumPy loop in a fresh process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_numpy_loop, args=(name, seed, elements, chunk, queue)
    )
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


def _bytes(count: float) -> str:
    return f"{count / GIB:.2f} GiB"


def _rate(elements: int, seconds: float) -> str:
    return f"{elements / seconds / 1e6:,.0f} M/s"


def report(results: list[dict[str, Any]], setup: dict[str, Any]) -> str:
    elements = setup["elements"]
    lines = [
        "# Out of core on a local Dask cluster",
        "",
        (
            f"- Run: {setup['when']}, commit {setup['commit'] or 'unknown'}, "
            f"arraylosses {setup['version']}, dask "
            f"{setup['dask']}, distributed {setup['distributed']}, NumPy {setup['numpy']}"
        ),
        f"- Machine: {setup['machine']}, {setup['cpus']} CPUs, Python {setup['python']}",
        (
            f"- Inputs: two float32 arrays of {elements:,} elements ({_bytes(elements * 4)}"
            f" each, generated lazily, never materialised), in chunks of {setup['chunk']:,}"
        ),
        (
            f"- Cluster: {setup['workers']} worker processes on 127.0.0.1, one thread "
            f"and a memory limit of {setup['memory_limit']} each"
        ),
        (
            "- The NumPy loop makes the same chunks from the same seeds in one process "
            "and adds up each chunk's loss."
        ),
        "",
        (
            "| loss | Dask s | Dask throughput | peak worker memory | tasks | NumPy loop s"
            " | NumPy throughput | NumPy peak memory | Dask / NumPy time"
            " | relative difference of the values |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        dask_run, loop = row["dask"], row["numpy"]
        difference = abs(dask_run["value"] - loop["value"]) / abs(loop["value"])
        lines.append(
            f"| {row['loss']} | {dask_run['seconds']:.1f} | "
            f"{_rate(elements, dask_run['seconds'])} | "
            f"{_bytes(dask_run['peak_worker_bytes'])} | {dask_run['tasks']} | "
            f"{loop['seconds']:.1f} | {_rate(elements, loop['seconds'])} | "
            f"{_bytes(loop['peak_bytes'])} | "
            f"{dask_run['seconds'] / loop['seconds']:.2f} | {difference:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=2_000_000_000)
    parser.add_argument("--chunk", type=int, default=25_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GiB")
    parser.add_argument(
        "--losses", default=",".join(CALLS), help="comma-separated; default: all"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    arguments = parser.parse_args(argv)
    names = [name.strip() for name in arguments.losses.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CALLS))
    if unknown or not names:
        parser.error(f"unknown losses {unknown}; choose among {', '.join(CALLS)}")

    import dask
    import distributed

    setup = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commit": git_commit(),
        "version": arraylosses.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "numpy": np.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpus": multiprocessing.cpu_count(),
        "python": platform.python_version(),
        "elements": arguments.elements,
        "chunk": arguments.chunk,
        "workers": arguments.workers,
        "memory_limit": arguments.memory_limit,
    }
    results = []
    with (
        distributed.LocalCluster(
            n_workers=arguments.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=arguments.memory_limit,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for name in names:
            sys.stderr.write(f"{name}: Dask ...\n")
            dask_run = run_dask(
                client, name, arguments.seed, arguments.elements, arguments.chunk
            )
            sys.stderr.write(f"{name}: NumPy loop ...\n")
            loop = run_numpy(name, arguments.seed, arguments.elements, arguments.chunk)
            results.append({"loss": name, "dask": dask_run, "numpy": loop})
    table = report(results, setup)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "scale.md").write_text(table)
    (arguments.out / "scale.json").write_text(
        json.dumps({"setup": setup, "results": results}, indent=2) + "\n"
    )
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
