"""Interleaved timing, and peak memory of one call, per library.

Timing: the functions of one comparison run in one process, in rounds. Each
round times one *sample* of every function, in an order that changes from
round to round (A B, B A, A B, ...), so that drift in the machine's speed
(other processes, frequency scaling, a warm or cold cache) falls on both sides
alike; with more than two functions the orders are the rows of a Williams
design, in which each function follows each other one equally often, so that
none always runs after the same one (whose buffers or caches it would meet).
A sample is ``inner`` back-to-back calls timed with ``time.perf_counter_ns``,
``inner`` chosen once per comparison so that a sample takes about two
milliseconds (one call where a call takes longer). Garbage is
collected before the rounds and the collector is off during them. The answer
is per round: the ratio (or difference) of the two functions' per-call times
in that round; the report gives the median over rounds, with a 95% confidence
interval from the order statistics of the rounds.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Fn = Callable[..., Any]


WARMUP_LIMIT_NS = 250_000_000
BATCH = 10  # calls per calibration batch
MAX_INNER = 100_000  # calls per sample, at most


@dataclass(frozen=True)
class Plan:
    """How long to time one comparison."""

    target_sample_ns: int
    max_rounds: int
    min_rounds: int
    budget_ns: int
    warmup_calls: int


FULL = Plan(
    target_sample_ns=2_000_000,
    max_rounds=201,
    min_rounds=51,
    budget_ns=20_000_000_000,
    warmup_calls=20,
)
QUICK = Plan(
    target_sample_ns=1_000_000,
    max_rounds=15,
    min_rounds=5,
    budget_ns=1_000_000_000,
    warmup_calls=3,
)


@dataclass(frozen=True)
class Timing:
    """Per-call times in nanoseconds, one list per function, one entry per round."""

    inner: int
    per_call_ns: list[list[float]]

    @property
    def rounds(self) -> int:
        return len(self.per_call_ns[0])

    def median_us(self, index: int) -> float:
        return statistics.median(self.per_call_ns[index]) / 1e3

    def ratio(self, top: int, bottom: int) -> tuple[float, float, float]:
        """Median over rounds of time[top] / time[bottom], with its 95% interval."""
        return median_ci(
            [
                a / b
                for a, b in zip(
                    self.per_call_ns[top], self.per_call_ns[bottom], strict=True
                )
            ]
        )


def median_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Median of ``values`` and a distribution-free 95% confidence interval for it.

    The interval runs between the order statistics of ranks n/2 ∓ 1.96·√n/2
    (the normal approximation to the binomial count of values below the median).
    """
    ordered = sorted(values)
    count = len(ordered)
    half_width = 1.96 * math.sqrt(count) / 2
    low = max(0, math.floor(count / 2 - half_width))
    high = min(count - 1, math.ceil(count / 2 + half_width) - 1)
    return statistics.median(ordered), ordered[low], ordered[high]


def interleave(calls: Sequence[tuple[Fn, tuple[Any, ...]]], plan: Plan) -> Timing:
    """Time ``calls`` (function, arguments) against each other in rotating rounds.

    Every function must already be compiled and warm; this warms each up again
    by ``plan.warmup_calls`` calls, picks the batch size, and times.
    """
    inner = _batch_size(calls, plan)
    per_call: list[list[float]] = [[] for _ in calls]
    perf_counter_ns = time.perf_counter_ns
    count = len(calls)
    gc.collect()
    gc.disable()
    try:
        started = perf_counter_ns()
        orders = _balanced_orders(count)
        for round_index in range(plan.max_rounds):
            for which in orders[round_index % len(orders)]:
                fn, args = calls[which]
                start = perf_counter_ns()
                for _ in range(inner):
                    fn(*args)
                per_call[which].append((perf_counter_ns() - start) / inner)
            if (
                round_index + 1 >= plan.min_rounds
                and perf_counter_ns() - started > plan.budget_ns
            ):
                break
    finally:
        gc.enable()
    return Timing(inner=inner, per_call_ns=per_call)


def _balanced_orders(count: int) -> list[list[int]]:
    """Orders of ``count`` functions, one per round in turn, in which each function
    comes right after each other one equally often (a Williams design: the first
    order 0, 1, n - 1, 2, n - 2, ..., each next one shifted by 1, and for an odd
    ``count`` each of those reversed as well)."""
    first, low, high = [0], 1, count - 1
    while low <= high:
        first.append(low)
        if low != high:
            first.append(high)
        low, high = low + 1, high - 1
    orders = [[(which + shift) % count for which in first] for shift in range(count)]
    if count % 2 and count > 1:
        orders += [order[::-1] for order in orders]
    return orders


def _batch_size(calls: Sequence[tuple[Fn, tuple[Any, ...]]], plan: Plan) -> int:
    """Calls per sample, so that a sample of the slowest function takes the target."""
    perf_counter_ns = time.perf_counter_ns
    slowest = 1.0
    for fn, args in calls:
        # warm up: plan.warmup_calls calls, or fewer (at least 2) past a quarter second
        started = perf_counter_ns()
        for done in range(plan.warmup_calls):
            fn(*args)
            if done >= 1 and perf_counter_ns() - started > WARMUP_LIMIT_NS:
                break
        singles = []
        for _ in range(3):
            start = perf_counter_ns()
            fn(*args)
            singles.append(perf_counter_ns() - start)
        per_call = float(min(singles))
        if per_call * BATCH < plan.target_sample_ns:
            # fast calls: time batches, so that timer resolution does not matter
            batches = []
            for _ in range(3):
                start = perf_counter_ns()
                for _ in range(BATCH):
                    fn(*args)
                batches.append((perf_counter_ns() - start) / BATCH)
            per_call = min(batches)
        slowest = max(slowest, per_call)
    return max(1, min(MAX_INNER, round(plan.target_sample_ns / slowest)))


def numpy_peak_bytes(fn: Fn, args: tuple[Any, ...]) -> int:
    """Peak bytes allocated during one call, less those live before it (NumPy).

    NumPy reports every data buffer it allocates to :mod:`tracemalloc`, so the
    traced peak during the call, less the traced size before it, is the most
    memory the call held at once (its temporaries and its result; the inputs
    were allocated before tracing began).
    """
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def torch_peak_bytes(fn: Fn, args: tuple[Any, ...]) -> int:
    """Peak bytes allocated during one call, less those live before it (PyTorch CPU).

    PyTorch's CPU allocator does not report to :mod:`tracemalloc`, and it keeps
    no peak statistics on the CPU. Its profiler, with ``profile_memory=True``,
    records every allocation and free the allocator makes, with its size
    (negative for a free) and time: the running sum of those, in time order,
    is the memory the call holds beyond what was live before it, and its
    maximum is the call's peak. (PyTorch's CPU allocator caches nothing, so
    an allocation event is a real allocation.) Kernels generated by
    torch.compile allocate through the same allocator and are counted alike.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args)
    events = [
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type() == DeviceType.CPU
    ]
    running = peak = 0
    for _, nbytes in sorted(events):
        running += nbytes
        peak = max(peak, running)
    return peak


def torch_operations(fn: Fn, args: tuple[Any, ...]) -> list[str]:
    """The ATen operations one call of ``fn`` runs, in order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    names: list[str] = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            names.append(str(func))
            return func(*args, **(kwargs or {}))

    with Record():
        fn(*args)
    return names


def jax_peak_bytes(jitted: Fn, args: tuple[Any, ...]) -> int:
    """Bytes XLA allocates for one call of a jitted function: temporaries plus output.

    From the compiled executable's own memory analysis; the arguments are the
    caller's and are not counted (nothing here donates or aliases them).
    """
    stats = jitted.lower(*args).compile().memory_analysis()
    if stats is None:
        msg = "this JAX backend gives no memory analysis"
        raise RuntimeError(msg)
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)
