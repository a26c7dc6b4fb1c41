"""The Markdown tables and the ratio plot of a benchmark run, and its targets."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent

TITLES = {
    "numpy": "NumPy",
    "torch": "PyTorch (eager)",
    "torch-autograd": "PyTorch (eager, the loss and its gradient)",
    "jax": "JAX (jax.jit on both sides)",
    "torch-compile": "PyTorch (torch.compile on both sides)",
}
# ours / idiom, median over rounds, in every cell
RATIO_TARGETS = {
    "numpy": 1.00,
    "torch": 1.00,
    "torch-autograd": 1.00,
    "jax": 1.05,
    "torch-compile": 1.05,
}
# dispatch and validation, µs per call
OVERHEAD_TARGETS_US = {"numpy": 1.0, "torch": 1.0}
# ours / one-pass read of the inputs
FLOOR_TARGETS = {"jax": 1.3}
# peak memory: ours <= idiom, up to half a byte per element of the loss: any
# array temporary of the loss's shape takes at least a byte per element (a bool
# mask), so a smaller difference is scalars and Python objects, not arrays
MEMORY_SLACK_PER_ELEMENT = 0.5

YES, NO = "✓", "✗"
WHOLE_MICROSECONDS = 1000  # times at least this long print without decimals
# ratio ticks of the plot's log axis, by how many times its top is its bottom
TICKS = (
    (1.8, (0.8, 0.9, 0.95, 1, 1.05, 1.1, 1.25, 1.5)),
    (4.0, (0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4)),
    (math.inf, (0.01, 0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 50, 100, 1000)),
)


def case_label(cell: dict[str, Any]) -> str:
    """'4,096' for a 1-D case, '(256, 50) masked' for the sequence case."""
    if cell.get("masked"):
        return f"({', '.join(map(str, cell['shape']))}) masked"
    return f"{cell['elements']:,}"


def errors(results: dict[str, Any]) -> list[str]:
    """Every failed measurement of a run, as 'backend: what: error'."""
    found = []
    for name, outcome in results["backends"].items():
        if "error" in outcome:
            found.append(f"{name}: {outcome['error']}")
            continue
        for table in ("ratios", "memory", "overhead", "floor"):
            found.extend(
                f"{name}: {table} {cell.get('loss')}: {cell['error']}"
                for cell in outcome[table]
                if "error" in cell
            )
    return found


def markdown(results: dict[str, Any]) -> str:
    """All tables of a run, as one Markdown document."""
    backends = results["backends"]
    lines = [
        "# arraylosses benchmarks",
        "",
        *_environment(results),
        "",
        "Each cell times arraylosses (ours) against the code users write by hand",
        "(the idiom: Spotlight's PyTorch expressions, and the same in NumPy and",
        "jax.numpy; see `benchmarks/idioms.py`), on float32 inputs, forward only",
        "and without autograd (no input requires a gradient), except in the",
        "table of the loss and its gradient: there each side computes the loss",
        "and, with `torch.autograd.grad`, its gradient with respect to the",
        "predictions, as a training step does (the targets set none for it; the",
        "eager target is shown).",
        "Ours and the idiom alternate batch by batch in one process; a ratio is",
        "the median over rounds of that round's ours / idiom, with the 95%",
        "confidence interval of the median beside it; times are medians of the",
        "per-call time. A target is met (✓) when the median ratio is at most the",
        "target. `benchmarks/README.md` gives the method.",
        "",
    ]
    if results["settings"].get("quick"):
        lines += [
            "**Quick run: few rounds per cell. These numbers show that the runner",
            "works; they are not measurements.**",
            "",
        ]
    lines += _summary(backends)
    for name, outcome in backends.items():
        lines += _ratio_table(name, outcome)
    lines += _overhead_table(backends)
    lines += _memory_table(backends, results["settings"])
    lines += _floor_table(backends, results["settings"])
    failures = errors(results)
    if failures:
        lines += ["## Failed measurements", ""]
        lines += [f"- {failure}" for failure in failures]
        lines.append("")
    return "\n".join(lines)


def _environment(results: dict[str, Any]) -> list[str]:
    environment = results["environment"]
    versions = ", ".join(
        f"{name} {version}"
        for name, version in environment["versions"].items()
        if version is not None
    )
    loads = ", ".join(
        f"{name} {outcome['load_average']['before'][0]:.2f}→"
        f"{outcome['load_average']['after'][0]:.2f}"
        for name, outcome in results["backends"].items()
        if outcome.get("load_average", {}).get("before")
    )
    lines = [
        f"- Run: {environment['date']}, commit {environment['commit'] or 'unknown'}",
        (
            f"- Machine: {environment['processor']}, {environment['cpu_count']} CPUs, "
            f"{environment['platform']}, Python {environment['python']}"
        ),
        f"- Versions: {versions}",
    ]
    if loads:
        lines.append(
            f"- 1-minute load average before→after each backend: {loads} "
            "(near 0 on a quiet machine; near the CPU count, other work competed)"
        )
    loops = ", ".join(
        f"{name} {outcome['interpreter_loop_us']:.1f}"
        for name, outcome in results["backends"].items()
        if outcome.get("interpreter_loop_us") is not None
    )
    if loops:
        lines.append(
            f"- Interpreter speed, µs for `sum(range(1000))` before each backend: "
            f"{loops} (machines differ: the eager cells at small sizes time mostly "
            "Python and per-call dispatch, and move with this)"
        )
    torch_info = results["backends"].get("torch", {}).get("info", {})
    if torch_info.get("threads"):
        capability = torch_info.get("cpu_capability")
        kernels = f"; its CPU kernels use {capability}" if capability else ""
        lines.append(f"- PyTorch intra-op threads: {torch_info['threads']}{kernels}")
    dispatch = results["backends"].get("jax", {}).get("info", {}).get("dispatch")
    if dispatch:
        how = {
            "sync": "synchronous, each jitted call run on the calling thread",
            "async": "asynchronous, each jitted call handed to XLA's worker thread",
        }[dispatch]
        lines.append(f"- JAX dispatch on the CPU: {how} (`--jax-dispatch {dispatch}`)")
    compiled = results["backends"].get("torch-compile", {}).get("info", {})
    cold = compiled.get("graph_breaks_before_any_eager_call")
    if cold is not None:
        outcome = f"had {cold} graph breaks" if isinstance(cold, int) else cold
        lines.append(
            "- torch.compile: `bpr_loss` compiled before any eager call of the "
            f"package {outcome} (the cells below run after one eager call of "
            "each loss)"
        )
    return lines


def _summary(backends: dict[str, Any]) -> list[str]:
    lines = [
        "## Summary",
        "",
        "| backend | target | cells meeting it | worst |",
        "|---|---|---|---|",
    ]
    for name, outcome in backends.items():
        target = RATIO_TARGETS[name]
        if "error" in outcome:
            lines.append(f"| {TITLES[name]} | ≤ {target:.2f} | not run | |")
            continue
        measured = [cell for cell in outcome["ratios"] if "error" not in cell]
        met = sum(_meets_ratio(cell, target) for cell in measured)
        worst = max(measured, key=lambda cell: cell["ratio"], default=None)
        worst_text = (
            ""
            if worst is None
            else f"{worst['ratio']:.3f} ({worst['loss']}, {case_label(worst)})"
        )
        failed = len(outcome["ratios"]) - len(measured)
        failed_text = f", {failed} failed" if failed else ""
        lines.append(
            f"| {TITLES[name]} | ≤ {target:.2f} | {met} of {len(measured)}"
            f"{failed_text} | {worst_text} |"
        )
    lines += _overhead_summary(backends)
    lines += _memory_summary(backends)
    lines += _floor_summary(backends)
    lines.append("")
    return lines


def _memory_summary(backends: dict[str, Any]) -> list[str]:
    return [
        _summary_row(
            f"{TITLES[name]}, peak memory",
            "≤ idiom",
            outcome["memory"],
            [cell for cell in outcome["memory"] if "error" not in cell],
            meets=_meets_memory,
            badness=lambda cell: cell["ours_bytes"] - cell["idiom_bytes"],
            describe=lambda cell: (
                f"ours − idiom {(cell['ours_bytes'] - cell['idiom_bytes']) / 1e6:+.2f} "
                f"MB ({cell['loss']})"
            ),
        )
        for name, outcome in backends.items()
        if outcome.get("memory")
    ]


def _floor_summary(backends: dict[str, Any]) -> list[str]:
    fastest = _fastest_floor_us(backends)
    rows = []
    for name, outcome in backends.items():
        cells = outcome.get("floor", [])
        target = FLOOR_TARGETS.get(name)
        if not cells or target is None or fastest is None:
            continue
        rows.append(
            _summary_row(
                f"{TITLES[name]}, memory floor",
                f"≤ {target:.2f} × floor",
                cells,
                [cell for cell in cells if "error" not in cell],
                meets=lambda cell, target=target: _meets_floor(cell, fastest, target),
                badness=lambda cell: _floor_ratio(cell, fastest),
                describe=lambda cell: (
                    f"{_floor_ratio(cell, fastest):.2f} × floor ({cell['loss']})"
                ),
            )
        )
    return rows


def _summary_row(
    label: str,
    target: str,
    all_cells: list[dict[str, Any]],
    measured: list[dict[str, Any]],
    *,
    meets: Callable[[dict[str, Any]], bool],
    badness: Callable[[dict[str, Any]], float],
    describe: Callable[[dict[str, Any]], str],
) -> str:
    """A summary row: how many of a table's cells meet the target (a cell not
    ``measured`` meets none), and the measured cell that is worst by ``badness``."""
    unmeasured = len(all_cells) - len(measured)
    unmeasured_text = f", {unmeasured} not measured" if unmeasured else ""
    worst = max(measured, key=badness, default=None)
    met = sum(meets(cell) for cell in measured)
    return (
        f"| {label} | {target} | {met} of {len(all_cells)}{unmeasured_text} | "
        f"{'' if worst is None else describe(worst)} |"
    )


def _meets_memory(cell: dict[str, Any]) -> bool:
    """At most the idiom's peak, up to the slack per element."""
    slack = MEMORY_SLACK_PER_ELEMENT * cell["elements"]
    return bool(cell["ours_bytes"] <= cell["idiom_bytes"] + slack)


def _fastest_floor_us(backends: dict[str, Any]) -> float | None:
    """The fastest one-pass read of the run, by any library: one library's pass can
    read the same bytes slower than another's, and the floor is the machine's."""
    return min(
        (
            cell["floor_us"]
            for outcome in backends.values()
            for cell in outcome.get("floor", [])
            if "error" not in cell
        ),
        default=None,
    )


def _floor_ratio(cell: dict[str, Any], fastest: float) -> float:
    """The larger of ours / the same library's pass and ours / the fastest pass."""
    return max(cell["ratio"], cell["ours_us"] / fastest)


def _meets_floor(cell: dict[str, Any], fastest: float, target: float) -> bool:
    return bool(cell["values_agree"]) and _floor_ratio(cell, fastest) <= target


def _overhead_summary(backends: dict[str, Any]) -> list[str]:
    rows = []
    for name, outcome in backends.items():
        cells = outcome.get("overhead", [])
        if not cells:
            continue
        target = OVERHEAD_TARGETS_US[name]
        rows.append(
            _summary_row(
                f"{TITLES[name]}, overhead",
                f"≤ {target:.1f} µs",
                cells,
                [c for c in cells if "error" not in c and c["bare_is_the_loss"]],
                meets=lambda cell, target=target: cell["overhead_us"] <= target,
                badness=lambda cell: cell["overhead_us"],
                describe=lambda cell: f"{cell['overhead_us']:.2f} µs ({cell['loss']})",
            )
        )
    return rows


def _meets_ratio(cell: dict[str, Any], target: float) -> bool:
    return bool(cell["values_agree"]) and cell["ratio"] <= target


def _ratio_table(name: str, outcome: dict[str, Any]) -> list[str]:
    target = RATIO_TARGETS[name]
    lines = [f"## {TITLES[name]}", ""]
    if "error" in outcome:
        return [*lines, f"Not run: {outcome['error']}", ""]
    lines += [
        "| loss | size | ours µs | idiom µs | ours / idiom | 95% CI | target | met |",
        "|---|---:|---:|---:|---:|---|---|:-:|",
    ]
    for cell in outcome["ratios"]:
        head = f"| {cell['loss']} | {case_label(cell)} |"
        if "error" in cell:
            lines.append(f"{head} | | | | ≤ {target:.2f} | error: {cell['error']} |")
            continue
        met = YES if _meets_ratio(cell, target) else NO
        breaks = cell.get("graph_breaks", {})
        if breaks.get("ours") or breaks.get("idiom"):
            met += f" graph breaks: ours {breaks['ours']}, idiom {breaks['idiom']}"
        if not cell["values_agree"]:
            met += (
                f" values differ: ours {cell['ours_value']:.6g}, "
                f"idiom {cell['idiom_value']:.6g}"
            )
        lines.append(
            f"{head} {_us(cell['ours_us'])} | {_us(cell['idiom_us'])} | "
            f"{cell['ratio']:.3f} | [{cell['ratio_low']:.3f}, {cell['ratio_high']:.3f}] | "
            f"≤ {target:.2f} | {met} |"
        )
    lines.append("")
    rounds = sorted({cell["rounds"] for cell in outcome["ratios"] if "rounds" in cell})
    if rounds:
        lines += [f"Rounds per cell: {rounds[0]} to {rounds[-1]}.", ""]
    return lines


def _overhead_table(backends: dict[str, Any]) -> list[str]:
    rows = [
        (name, cell)
        for name, outcome in backends.items()
        for cell in outcome.get("overhead", [])
    ]
    if not rows:
        return []
    lines = [
        "## Dispatch and validation overhead",
        "",
        "One call on 1-element float32 arrays (the adaptive hinge's negatives",
        "are 5 × 1), against the same call without the package's boundary: the",
        "primitives that the loss runs, from the package's table of each",
        "library's functions (the library's kernels, each through a thin",
        "function of the package's, and on PyTorch the few checks inside them",
        "that pick the kernel), composed as the loss composes them, called bare",
        "on the same arrays. The overhead is the median over rounds of the",
        "difference, with its 95% interval: the public function, `prepare`",
        "(namespace, devices, dtypes, shapes), the call's record and `finish`.",
        "`prepare` alone is beside it. The bare composition is checked to be the",
        "loss's own: the same primitives in the same order, the same bits, and on",
        "PyTorch the same ATen operations. The primitives' own Python is not in",
        "the overhead; it is in the last column but one, ours less the idiom's",
        "whole call, with the difference between the two sides' kernels (the",
        "package's stable sigmoids and log terms take more of them on NumPy).",
        "",
        "| backend | loss | ours µs | bare µs | overhead µs | 95% CI | of which `prepare` µs | idiom µs | ours − idiom µs | target | met |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|:-:|",
    ]
    for name, cell in rows:
        target = OVERHEAD_TARGETS_US[name]
        head = f"| {TITLES[name]} | {cell['loss']} |"
        if "error" in cell:
            lines.append(
                f"{head} | | | | | | | ≤ {target:.1f} µs | error: {cell['error']} |"
            )
            continue
        if not cell["bare_is_the_loss"]:
            met = "bare composition is not the loss's own"
        else:
            met = YES if cell["overhead_us"] <= target else NO
        interval = f"[{cell['overhead_low_us']:.2f}, {cell['overhead_high_us']:.2f}]"
        lines.append(
            f"{head} {_us(cell['ours_us'])} | {_us(cell['bare_us'])} | "
            f"{cell['overhead_us']:.2f} | {interval} | {cell['prepare_us']:.2f} | "
            f"{_us(cell['idiom_us'])} | {cell['ours_us'] - cell['idiom_us']:+.2f} | "
            f"≤ {target:.1f} µs | {met} |"
        )
    lines.append("")
    return lines


def _memory_table(backends: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    rows = [
        (name, outcome, cell)
        for name, outcome in backends.items()
        for cell in outcome.get("memory", [])
    ]
    if not rows:
        return []
    lines = [
        f"## Peak memory of one call at {settings['memory_size']:,} elements",
        "",
        "Bytes the call allocates at its peak beyond the inputs (its temporaries",
        "and result); the inputs themselves are in the last column. Ours meets",
        "the target when it is at most the idiom's plus half a byte per element:",
        "a temporary of the loss's shape takes at least a byte per element, so a",
        "smaller difference is scalars, Python objects, or arrays of a reduced",
        "shape (a row's or a column's), which the slack could hide. *n/a*: the",
        "idiom allocates no array at all.",
        "",
        (
            "| backend | loss | ours MB | idiom MB | ours / idiom | target | met | "
            "inputs MB | how |"
        ),
        "|---|---|---:|---:|---:|---|:-:|---:|---|",
    ]
    for name, outcome, cell in rows:
        head = f"| {TITLES[name]} | {cell['loss']} |"
        if "error" in cell:
            lines.append(f"{head} | | | ≤ idiom | error: {cell['error']} | | |")
            continue
        ours, idiom = cell["ours_bytes"], cell["idiom_bytes"]
        slack = MEMORY_SLACK_PER_ELEMENT * cell["elements"]
        ratio = f"{ours / idiom:.2f}" if idiom > slack else "n/a"
        met = YES if _meets_memory(cell) else NO
        lines.append(
            f"{head} {_mb(ours)} | {_mb(idiom)} | {ratio} | ≤ idiom | {met} | "
            f"{_mb(cell['input_bytes'])} | {outcome['memory_method']} |"
        )
    lines.append("")
    return lines


def _floor_table(backends: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    rows = [
        (name, cell)
        for name, outcome in backends.items()
        for cell in outcome.get("floor", [])
    ]
    if not rows:
        return []
    fastest = _fastest_floor_us(backends)
    lines = [
        f"## Memory floor at {settings['floor_size']:,} elements",
        "",
        "The floor is one compiled pass that reads both inputs once, `sum(a + b)`:",
        "a loss over the same inputs cannot read less. Ratios are medians over",
        "rounds of ours / floor and idiom / floor, against the same library's pass",
        "interleaved with them; beside them, ours against the fastest pass of the",
        "run, whichever library's (a ratio of medians timed in two processes, so",
        "without an interval). A target is met where both ratios are within it.",
        "",
        (
            "| backend | loss | ours µs | idiom µs | floor µs | ours / floor | 95% CI | "
            "idiom / floor | ours / fastest floor | target | met |"
        ),
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|:-:|",
    ]
    for name, cell in rows:
        target = FLOOR_TARGETS.get(name)
        target_text = "none set" if target is None else f"≤ {target:.2f}"
        head = f"| {TITLES[name]} | {cell['loss']} |"
        if "error" in cell or fastest is None:
            error = cell.get("error", "no floor measured")
            lines.append(f"{head} | | | | | | | {target_text} | error: {error} |")
            continue
        against_fastest = cell["ours_us"] / fastest
        if target is None:
            met = "n/a"
        else:
            met = YES if _meets_floor(cell, fastest, target) else NO
        if not cell["values_agree"]:
            met += " values differ"
        lines.append(
            f"{head} {_us(cell['ours_us'])} | {_us(cell['idiom_us'])} | "
            f"{_us(cell['floor_us'])} | {cell['ratio']:.2f} | "
            f"[{cell['ratio_low']:.2f}, {cell['ratio_high']:.2f}] | "
            f"{cell['idiom_ratio']:.2f} | {against_fastest:.2f} | {target_text} | "
            f"{met} |"
        )
    lines.append("")
    return lines


def _us(value: float) -> str:
    """Microseconds with three significant digits, or whole ones above 1000."""
    if value >= WHOLE_MICROSECONDS:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f}"


def plot(results: dict[str, Any], path: Path) -> None:
    """ratio ours / idiom against size, one panel per backend, one line per loss."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    backends = {
        name: outcome
        for name, outcome in results["backends"].items()
        if "error" not in outcome
    }
    panels = max(1, len(backends))
    columns = 2 if panels > 1 else 1
    rows = (panels + columns - 1) // columns
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(6.0 * columns, 4.2 * rows),
        squeeze=False,
        constrained_layout=True,
    )
    losses = results["settings"]["losses"]
    sequence = "({}, {})".format(*results["settings"]["sequence"] or ("B", "T"))
    colours = {loss: plt.get_cmap("tab10")(index) for index, loss in enumerate(losses)}
    for axis in axes.flat[len(backends) :]:
        axis.set_visible(False)
    for axis, (name, outcome) in zip(axes.flat, backends.items(), strict=False):
        target = RATIO_TARGETS[name]
        values = [target]
        for loss in losses:
            cells = [
                cell
                for cell in outcome["ratios"]
                if cell["loss"] == loss and "error" not in cell
            ]
            line = sorted(
                (cell["elements"], cell["ratio"])
                for cell in cells
                if not cell["masked"]
            )
            if line:
                axis.plot(*zip(*line, strict=True), marker="o", color=colours[loss])
            for cell in cells:
                if cell["masked"]:
                    axis.plot(
                        cell["elements"],
                        cell["ratio"],
                        marker="D",
                        markerfacecolor="none",
                        markersize=8,
                        linestyle="none",
                        color=colours[loss],
                    )
            values += [cell["ratio"] for cell in cells]
        axis.axhline(target, color="black", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_yscale("log")
        low, high = min(min(values) * 0.9, 0.8), max(max(values) * 1.1, 1.25)
        axis.set_ylim(low, high)
        candidates = next(ticks for span, ticks in TICKS if high / low < span)
        axis.set_yticks([tick for tick in candidates if low <= tick <= high])
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_title(f"{TITLES[name]}: target ≤ {target:.2f}")
        axis.set_xlabel("elements of the loss")
        axis.set_ylabel("ours / idiom (median)")
        axis.grid(visible=True, which="major", alpha=0.3)
    handles = [
        Line2D([], [], color=colours[loss], marker="o", label=loss) for loss in losses
    ]
    handles += [
        Line2D(
            [],
            [],
            color="grey",
            marker="D",
            markerfacecolor="none",
            linestyle="none",
            label=f"{sequence} masked",
        ),
        Line2D([], [], color="black", linestyle="--", label="target"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=5)
    title = "arraylosses / hand-written idiom, lower is better"
    if results["settings"].get("quick"):
        title += " (quick run: not a measurement)"
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def git_commit() -> str | None:
    """The short hash of the checkout's HEAD, marked where ``src/`` has changes
    of its own; None outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_HERE.parent), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head} (src/ modified)" if dirty else head
