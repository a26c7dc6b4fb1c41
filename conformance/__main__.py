"""Command line: ``python -m conformance [--backends ...] [--device ...] [--dtypes ...]``.

Exit status: 0 when every row passes, 1 when any fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import cases
from .backends import ALL_BACKENDS, DEVICE_BACKENDS, DTYPES, Backend, load_backend
from .deviations import deviation_rows
from .gradients import torch_available
from .peers import load_peers
from .report import Row, print_report, write_json
from .runner import References, reference_checks, run_backend
from .training import training_rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description=(
            "Check arraylosses against independent references (Spotlight's "
            "formulas in float64, torch.nn.functional, optax) on every backend, "
            "dtype, shape, mask and reduction; print a table and exit non-zero "
            "on any failure."
        ),
    )
    parser.add_argument(
        "--backends",
        default="auto",
        help=(
            "comma-separated backends ("
            + ", ".join(ALL_BACKENDS)
            + "); 'auto' (default): those that import here, for --device; "
            "'all': every backend of --device, each required"
        ),
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help=(
            "where the arrays live: cpu (numpy, array_api_strict, torch, jax, dask) "
            "or cuda (cupy, torch, jax); the training parity runs there too"
        ),
    )
    parser.add_argument(
        "--dtypes",
        default=",".join(DTYPES),
        help=(
            "comma-separated dtypes of the matrix (default: all; each backend runs "
            "those it has); the deviation rows always run in float32 (and float16)"
        ),
    )
    parser.add_argument("--json", type=Path, help="write every row to this JSON file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs")
    parser.add_argument(
        "--no-training",
        action="store_true",
        help="skip the drop-in training parity (torch, on --device)",
    )
    parser.add_argument(
        "--no-reference-checks",
        action="store_true",
        help="skip checking the references against each other (peers, differences)",
    )
    parser.add_argument(
        "--require-peers",
        action="store_true",
        help="fail when torch.nn.functional or optax cannot be imported",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="list every failure, not the first 200"
    )
    return parser


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _backends(
    names: str, device: str, notes: list[str], rows: list[Row]
) -> list[Backend]:
    if names in {"auto", "all"}:
        wanted, required = list(DEVICE_BACKENDS[device]), names == "all"
    else:
        wanted, required = _split(names), True
    loaded = []
    for name in wanted:
        try:
            loaded.append(load_backend(name, device))
        except Exception as error:  # noqa: BLE001 - any failure: cannot use it here
            reason = (
                f"{name} on {device}: unavailable ({type(error).__name__}: {error})"
            )
            if required:
                rows.append(_missing(name, device, reason))
            else:
                notes.append(reason + ", skipped")
    return loaded


def _missing(name: str, device: str, reason: str) -> Row:
    return Row(
        backend=name if device == "cpu" else f"{name}:{device}",
        loss="-",
        options="",
        dtype="-",
        shape="-",
        mask="-",
        reduction="-",
        kind="unavailable",
        reference_name="-",
        ours="-",
        reference="-",
        error=float("inf"),
        tol=0.0,
        passed=False,
        note=reason,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    dtypes = _split(args.dtypes)
    unknown = sorted(set(dtypes) - set(DTYPES))
    if unknown:
        sys.stderr.write(f"unknown dtypes {unknown}; known: {', '.join(DTYPES)}\n")
        return 2
    if not dtypes:
        sys.stderr.write(f"--dtypes names none; known: {', '.join(DTYPES)}\n")
        return 2
    if args.backends not in {"auto", "all"}:
        unknown = sorted(set(_split(args.backends)) - set(ALL_BACKENDS))
        if unknown:
            sys.stderr.write(
                f"unknown backends {unknown}; known: {', '.join(ALL_BACKENDS)}\n"
            )
            return 2
    try:
        import arraylosses  # noqa: PLC0415
    except ImportError as error:
        sys.stderr.write(
            f"cannot import arraylosses ({error}): install it, or run with "
            "PYTHONPATH=src from the repository root\n"
        )
        return 2

    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    backends = _backends(args.backends, args.device, notes, rows)
    if not backends and not rows:
        rows.append(_missing("any backend", args.device, "no backend can be used here"))
    peers = load_peers()
    for peer in peers:
        if not peer.available:
            if args.require_peers:
                rows.append(_missing(peer.name, "cpu", peer.reason))
            else:
                notes.append(f"peer {peer.name} skipped: {peer.reason}")
    method = "autograd" if torch_available() else "fd"
    if method == "fd":
        notes.append(
            "torch is missing: reference gradients are central differences only"
        )
    refs = References(method)

    timings: dict[str, float] = {}
    sys.stdout.write(
        f"arraylosses {arraylosses.__version__} on Python {platform.python_version()}, "
        f"device {args.device}, dtypes {', '.join(dtypes)}, seed {args.seed}\n"
    )
    if not args.no_reference_checks:
        tick = time.perf_counter()
        rows.extend(reference_checks(args.seed, peers, refs))
        timings["reference"] = time.perf_counter() - tick
    matrix_runs = 0  # backends times dtypes
    for backend in backends:
        tick = time.perf_counter()
        available = [d for d in dtypes if d in backend.dtypes]
        missing = [d for d in dtypes if d not in backend.dtypes]
        if missing:
            notes.append(f"{backend.label} has no {', '.join(missing)}: not run there")
        if available:
            rows.extend(run_backend(backend, available, args.seed, peers, refs))
            matrix_runs += len(available)
        else:
            # a run that checks nothing of the matrix must not read as a pass
            reason = f"has none of the dtypes asked for ({', '.join(dtypes)})"
            rows.append(_missing(backend.name, backend.device, reason))
        rows.extend(deviation_rows(backend, args.seed))
        timings[backend.label] = time.perf_counter() - tick
        sys.stdout.write(
            f"  {backend.label} {backend.version}: {timings[backend.label]:.1f} s\n"
        )
        sys.stdout.flush()
    if not args.no_training:
        tick = time.perf_counter()
        training, training_notes = training_rows(args.seed, args.device)
        rows.extend(training)
        notes.extend(training_notes)
        timings["training"] = time.perf_counter() - tick
    elapsed = time.perf_counter() - started
    notes.append(
        f"{len(cases.matrix())} matrix cases per backend and dtype, on "
        f"{matrix_runs} backend and dtype pairs; ran in "
        f"{elapsed:.1f} s ("
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        + ")"
    )

    print_report(rows, notes, sys.stdout, verbose=args.verbose)
    if args.json is not None:
        meta: dict[str, Any] = {
            "arraylosses": arraylosses.__version__,
            "python": platform.python_version(),
            "device": args.device,
            "dtypes": dtypes,
            "seed": args.seed,
            "backends": {b.label: b.version for b in backends},
            "peers": {p.name: p.reason or "available" for p in peers},
            "gradient_reference": method,
            "seconds": round(elapsed, 1),
            "notes": notes,
        }
        write_json(args.json, rows, meta)
        sys.stdout.write(f"JSON report: {args.json}\n")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
