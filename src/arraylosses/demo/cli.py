"""``python -m arraylosses demo``: train one model per loss and compare them.

Every model is the same factorization, trained by the same array API loop with
gradients from :func:`arraylosses.value_and_grad`, on the backend the user
names; only the loss changes. The table reads each against a random and a
popularity baseline (a global-mean one for ratings).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .. import __version__
from .._namespace import OLDEST_NUMPY_MAJOR, backend_of, promotes_by_dtype
from . import EXPLICIT, IMPLICIT

Namespace = Any

__all__ = ["main"]

# the module whose asarray makes an array of each backend
BACKEND_MODULES = {
    "numpy": "numpy",
    "torch": "torch",
    "jax": "jax.numpy",
    "cupy": "cupy",
    "array_api_strict": "array_api_strict",
}
# how to install each backend that pip does not install by its own name; quoted
# where a shell would take the brackets for a glob pattern (zsh does)
BACKEND_INSTALLS = {
    "jax": "pip install 'jax[cpu]'",
    "array_api_strict": "pip install array-api-strict",
    # a wheel per major version of CUDA: `cupy` alone builds from source
    "cupy": "pip install cupy-cuda13x, or cupy-cuda12x for CUDA 12",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    arguments, unknown = parser.parse_known_args(argv)
    if unknown:
        # an unknown option before the command (or with none) is the top level's,
        # after it the demo's, whose error shows the demo's usage
        tokens = list(sys.argv[1:] if argv is None else argv)
        command_at = (
            len(tokens)
            if arguments.command is None
            else tokens.index(arguments.command)
        )
        top_level = tokens.index(unknown[0]) < command_at
        culprit = parser if top_level else arguments.command_parser
        culprit.error(f"unrecognized arguments: {' '.join(unknown)}")
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return 2
    # the demo's own parser, so that its errors show the demo's usage
    demo = arguments.command_parser
    try:
        return _demo(arguments, demo)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{demo.prog}: interrupted\n")
        return 130  # 128 + SIGINT, as a shell reports it


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m arraylosses",
        description="Spotlight's losses over the array API standard.",
    )
    parser.add_argument(
        "--version", action="version", version=f"arraylosses {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a recommender with each loss and compare them",
        description=(
            "Train one factorization model per implicit loss (and, with "
            "--explicit, per explicit loss) with gradients from "
            "arraylosses.value_and_grad, in a training loop written once over the "
            "array API, and print each model's test metrics beside baselines."
        ),
    )
    demo.set_defaults(command_parser=demo)
    demo.add_argument(
        "--backend",
        choices=sorted(BACKEND_MODULES),
        default="numpy",
        help="array library to train with (default: numpy)",
    )
    demo.add_argument(
        "--losses",
        type=_loss_list,
        metavar="NAMES",
        help=(
            "comma-separated losses to train, among "
            f"{', '.join(_all_losses())} (default: the four implicit ones, and the "
            "three explicit ones with --explicit)"
        ),
    )
    demo.add_argument(
        "--explicit",
        action="store_true",
        help="also train the explicit losses on the ratings (--losses overrides)",
    )
    demo.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help=(
            "CSV, TSV (each with a header row) or Parquet (needs pyarrow) file of "
            "interactions with columns user and item, integer ids, and optionally "
            "rating (default: a synthetic dataset)"
        ),
    )
    demo.add_argument("--epochs", type=_positive(int), default=10, help="default: 10")
    demo.add_argument(
        "--dim", type=_positive(int), default=16, help="embedding size (default: 16)"
    )
    demo.add_argument(
        "--batch-size", type=_positive(int), default=256, help="default: 256"
    )
    demo.add_argument(
        "--learning-rate", type=_positive(float), default=5e-3, help="default: 5e-3"
    )
    demo.add_argument(
        "--l2", type=_non_negative(float), default=1e-5, help="default: 1e-5"
    )
    demo.add_argument(
        "--negatives",
        type=_positive(int),
        default=5,
        help="negatives per positive for the adaptive hinge (default: 5)",
    )
    demo.add_argument("--seed", type=_non_negative(int), default=0, help="default: 0")
    demo.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write the training curves to this PNG file (needs matplotlib)",
    )
    return parser


def _all_losses() -> list[str]:
    return [*IMPLICIT, *EXPLICIT]


def _loss_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _all_losses()]
    if not names:
        msg = "expected at least one loss"
        raise argparse.ArgumentTypeError(msg)
    if unknown:
        msg = (
            f"unknown loss {', '.join(unknown)}; "
            f"choose among {', '.join(_all_losses())}"
        )
        raise argparse.ArgumentTypeError(msg)
    return list(dict.fromkeys(names))


def _positive(kind: type[int | float]) -> Any:
    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if not 0 < value < math.inf:
            msg = f"must be positive and finite, got {text}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _non_negative(kind: type[float]) -> Any:
    def parse(text: str) -> float:
        value = _number(kind, text)
        if not 0 <= value < math.inf:
            msg = f"must be at least 0 and finite, got {text}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = kind.__name__
    return parse


def _number(kind: type[int | float], text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        msg = f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def namespace(backend: str) -> Namespace:
    """The array API namespace of ``backend``, importing the library, which the
    user has asked for by name.

    Raises
    ------
    RuntimeError
        If the library is not installed, or CuPy sees no GPU.
    """
    module_name = BACKEND_MODULES[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        install = BACKEND_INSTALLS.get(backend, f"pip install {backend}")
        msg = f"--backend {backend} needs {backend}, not installed: {install} ({error})"
        raise RuntimeError(msg) from None
    if backend == "cupy":
        msg = "--backend cupy needs a CUDA GPU, and CuPy sees none"
        try:
            devices = module.cuda.runtime.getDeviceCount()
        except RuntimeError as error:  # CUDA's, where there is no GPU or no driver
            msg += f" ({error})"
            raise RuntimeError(msg) from None
        if devices < 1:
            raise RuntimeError(msg)
    return backend_of(module.asarray(0.0), "backend").xp


@dataclass
class Result:
    """One row of the demo's table."""

    model: str
    loss: str = "-"
    predicts: str = "-"
    epochs: int | None = None
    seconds: float | None = None
    final_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[float] = field(default_factory=list)


def _demo(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_numpy(parser)
    # imported here, not at the top: --help works without NumPy, and fast
    import numpy as np  # noqa: PLC0415

    from . import data as datasets  # noqa: PLC0415
    from .model import float32_matmuls  # noqa: PLC0415
    from .training import Settings  # noqa: PLC0415

    losses = arguments.losses or [*IMPLICIT, *(EXPLICIT if arguments.explicit else ())]
    if arguments.plot is not None:
        _check_plot_path(arguments.plot, parser)
    try:
        xp = namespace(arguments.backend)
    except RuntimeError as error:
        parser.error(str(error))
    try:
        interactions = (
            datasets.synthetic(seed=arguments.seed)
            if arguments.data is None
            else datasets.load(arguments.data)
        )
    except (OSError, ValueError, ImportError) as error:
        parser.error(f"--data: {error}")
    explicit = [name for name in losses if name in EXPLICIT]
    if explicit and interactions.ratings is None:
        parser.error(
            f"the explicit losses ({', '.join(explicit)}) need ratings, and "
            f"{arguments.data} has no rating column"
        )
    ratings = interactions.ratings
    if "poisson" in explicit and ratings is not None:
        least = ratings.min()
        if least < 0:
            parser.error(
                f"--data: the poisson loss takes the ratings as counts, and "
                f"{arguments.data} has negative ones (the least is {least})"
            )
    train, test = datasets.train_test_split(interactions, seed=arguments.seed)
    if len(test) == 0:
        parser.error(
            f"--data: no user of {arguments.data} has two distinct items, so none "
            "can be held out to test on"
        )
    settings = Settings(
        epochs=arguments.epochs,
        dim=arguments.dim,
        batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate,
        l2=arguments.l2,
        negatives=arguments.negatives,
        seed=arguments.seed,
    )
    source = "synthetic" if arguments.data is None else str(arguments.data)
    sys.stderr.write(
        f"Data: {source}: {interactions.n_users} users, {interactions.n_items} "
        f"items, {len(train)} training and {len(test)} test interactions. "
        f"Backend: {arguments.backend}.\n"
    )
    implicit = [name for name in losses if name in IMPLICIT]
    sections = []
    if implicit:
        sections.append(
            ("Implicit feedback: ranking unseen items", "implicit", implicit)
        )
    if explicit:
        sections.append(("Explicit feedback: predicting ratings", "explicit", explicit))
    trained: list[Result] = []
    for title, family, names in sections:
        try:
            # a loss, parameter or metric of inf or NaN ends the run with an error that
            # says so; NumPy's warnings of the overflow on the way would only precede it
            with (
                float32_matmuls(arguments.backend),
                np.errstate(over="ignore", invalid="ignore"),
            ):
                results = _run_family(
                    family, names, train, test, xp=xp, settings=settings
                )
        except (_NotFiniteError, _OutOfMemoryError) as error:
            parser.exit(1, f"{parser.prog}: error: {error}\n")
        sys.stdout.write(
            _table(title, family, results, backend=arguments.backend) + "\n"
        )
        trained.extend(result for result in results if result.curve)
    if arguments.plot is not None:
        try:
            _plot(trained, arguments.plot)
        except OSError as error:
            parser.exit(1, f"{parser.prog}: error: --plot: {error}\n")
        sys.stderr.write(f"Training curves written to {arguments.plot}\n")
    return 0


def _check_numpy(parser: argparse.ArgumentParser) -> None:
    # the demo draws its data and batches with NumPy, whatever --backend computes with
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
        numpy = None
    if numpy is None or not promotes_by_dtype(numpy):
        found = "none is installed" if numpy is None else f"found {numpy.__version__}"
        parser.error(
            f"the demo needs NumPy {OLDEST_NUMPY_MAJOR}.0 or later ({found}): "
            f"pip install 'numpy>={OLDEST_NUMPY_MAJOR}'"
        )


def _check_plot_path(path: Path, parser: argparse.ArgumentParser) -> None:
    # before any training: a run must not end in an error it could have foreseen
    if path.suffix.lower() != ".png":
        parser.error(f"--plot: {path} must end in .png")
    if not path.parent.is_dir():
        parser.error(f"--plot: the folder {path.parent} does not exist")
    if path.is_dir():
        parser.error(f"--plot: {path} is a folder")
    # opened as the plot will be, to append nothing: an existing file is unchanged,
    # and a new one is removed again. Resolved first: through a link, even one whose
    # target does not exist yet, the plot goes to the target, and the link stays
    target = path.resolve()
    existed = target.exists()
    try:
        with target.open("ab"):
            pass
    except OSError as error:
        parser.error(f"--plot: cannot write {path} ({error.strerror})")
    if not existed:
        target.unlink()
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        parser.error("--plot needs matplotlib: pip install matplotlib")


def _run_family(
    family: str,
    names: list[str],
    train: Any,
    test: Any,
    *,
    xp: Namespace,
    settings: Any,
) -> list[Result]:
    from . import evaluation  # noqa: PLC0415
    from .training import train as fit  # noqa: PLC0415

    in_training = (
        f"lower --dim (now {settings.dim}), --negatives ({settings.negatives}) or "
        f"--batch-size ({settings.batch_size})"
    )
    # the ranking scores every pair at once, whatever the options
    in_evaluation = (
        f"the evaluation scores each of the {train.n_users:,} users against each of "
        f"the {train.n_items:,} items at once; try a smaller dataset"
    )
    # too large a learning rate or l2 sends the updates to inf (Adam adds l2 times each
    # parameter); ratings too large for float32's squares send an explicit loss, or
    # its RMSE, there at once
    steps = (
        f"try a smaller --learning-rate (now {settings.learning_rate}) or --l2 (now "
        f"{settings.l2})"
    )
    scale = ""
    if family == "explicit":
        largest = float(abs(train.ratings).max())
        scale = f"check the ratings' scale (the largest is {largest:g})"
    diverged_advice = f"{steps}, or {scale}" if scale else steps
    overflow_advice = scale or steps
    with _out_of_memory_means(in_evaluation):
        results = _baselines(family, names, train, test, xp=xp, seed=settings.seed)
    for result in results:
        _check_finite(result, overflow_advice)
    for name in names:
        progress = _Progress(name, settings.epochs)
        start = time.perf_counter()
        with _out_of_memory_means(in_training):
            trained = fit(
                name,
                train,
                xp=xp,
                settings=settings,
                on_batch=progress.batch,
                on_epoch=_stop_at_divergence(progress.epoch, name, diverged_advice),
            )
            # reading the parameters waits for the last updates, where a library
            # runs them asynchronously (JAX), and so for their errors
            if not _finite_parameters(trained.model, xp=xp):
                epochs = len(trained.epoch_losses)
                sign = f"some of its parameters were inf or NaN after epoch {epochs}"
                raise _diverged(name, sign, diverged_advice)
        seconds = time.perf_counter() - start
        model = trained.model
        with _out_of_memory_means(in_evaluation):
            if family == "implicit":
                scores = model.all_scores()
                ranking = evaluation.ranking_metrics(scores, train, test, xp=xp)
                metrics = _ranking_metrics(ranking)
            else:
                test_users, test_items = xp.asarray(test.users), xp.asarray(test.items)
                scores, _, _ = model.score(test_users, test_items)
                predicted = evaluation.predicted_outcome(name, scores, xp=xp)
                observed = xp.asarray(evaluation.observed_outcome(name, test.ratings))
                metrics = {"RMSE": evaluation.rmse(predicted, observed, xp=xp)}
        result = Result(
            model="factorization",
            loss=name,
            predicts=_OUTCOMES.get(name, "-"),
            epochs=settings.epochs,
            seconds=seconds,
            final_loss=trained.epoch_losses[-1],
            metrics=metrics,
            curve=trained.epoch_losses,
        )
        _check_finite(result, overflow_advice)
        results.append(result)
    return results


def _finite_parameters(model: Any, *, xp: Namespace) -> bool:
    """Whether none of ``model``'s parameters is inf or NaN, as updates that no later
    loss saw (an epoch's last batch, or rows that no later batch read) can leave them."""
    return all(bool(xp.all(xp.isfinite(p))) for p in model.parameters)


def _ranking_metrics(ranking: Any) -> dict[str, float]:
    return {"MRR": ranking.mrr, f"P@{ranking.k}": ranking.precision_at_k}


def _stop_at_divergence(
    on_epoch: Callable[[int, float], None], name: str, advice: str
) -> Callable[[int, float], None]:
    """``on_epoch``, then an error where the epoch's loss is inf or NaN: no later epoch
    can recover, and each would take as long."""

    def checked(epoch: int, mean_loss: float) -> None:
        on_epoch(epoch, mean_loss)
        if not math.isfinite(mean_loss):
            sign = f"its loss was {mean_loss} in epoch {epoch + 1}"
            raise _diverged(name, sign, advice)

    return checked


def _diverged(name: str, sign: str, advice: str) -> _NotFiniteError:
    return _NotFiniteError(f"training with the {name} loss diverged: {sign}; {advice}")


def _check_finite(result: Result, advice: str) -> None:
    """Refuse a row whose metric is inf or NaN: float32 overflowed on the way to it."""
    for metric, value in result.metrics.items():
        if not math.isfinite(value):
            who = result.model if result.loss == "-" else f"the {result.loss} model"
            msg = (
                f"{who}'s test {metric} is {value}: float32 overflowed computing it; "
                f"{advice}"
            )
            raise _NotFiniteError(msg)


class _NotFiniteError(RuntimeError):
    """A loss, parameter or test metric of inf or NaN: the table would mean nothing."""


class _OutOfMemoryError(RuntimeError):
    """A run that does not fit in memory; the message says what to make smaller."""


# what each library says where an allocation fails without a MemoryError: PyTorch's
# CPU allocator, CUDA's (through PyTorch or JAX) and XLA's; and NumPy, of a size
# past what it can address
_OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "resource_exhausted")
_TOO_BIG = "array is too big"


@contextlib.contextmanager
def _out_of_memory_means(advice: str) -> Iterator[None]:
    """Turn running out of memory, however the array library says it, into an
    :class:`_OutOfMemoryError` with ``advice``; any other error passes as it is."""
    try:
        yield
    except Exception as error:
        said = str(error).lower()
        if not (
            isinstance(error, MemoryError)
            or any(words in said for words in _OUT_OF_MEMORY)
            or (isinstance(error, ValueError) and _TOO_BIG in said)
        ):
            raise
        msg = f"out of memory; {advice}"
        raise _OutOfMemoryError(msg) from error


def _baselines(
    family: str, names: list[str], train: Any, test: Any, *, xp: Namespace, seed: int
) -> list[Result]:
    from . import evaluation  # noqa: PLC0415

    if family == "implicit":
        baselines = []
        for model, scores in (
            (
                "random",
                evaluation.random_scores(train.n_users, train.n_items, seed=seed),
            ),
            ("popularity", evaluation.popularity_scores(train)),
        ):
            ranking = evaluation.ranking_metrics(xp.asarray(scores), train, test, xp=xp)
            baselines.append(Result(model=model, metrics=_ranking_metrics(ranking)))
        return baselines
    # one global mean per outcome, each named by a loss that predicts it: the rating
    # (regression's, and Poisson's), or the share of likes (logistic's)
    outcomes = dict.fromkeys(
        "logistic" if n == "logistic" else "regression" for n in names
    )
    baselines = []
    for loss in outcomes:
        observed = evaluation.observed_outcome(loss, test.ratings)
        mean = float(evaluation.observed_outcome(loss, train.ratings).mean())
        rmse = evaluation.rmse(
            xp.full(observed.shape, mean, dtype=xp.float32), xp.asarray(observed), xp=xp
        )
        label = "global like rate" if loss == "logistic" else "global mean"
        baselines.append(
            Result(model=label, predicts=_OUTCOMES[loss], metrics={"RMSE": rmse})
        )
    return baselines


_OUTCOMES = {
    "regression": "rating",
    "poisson": "rating, as a count",
    "logistic": "like: rating >= 4",
}


def _table(title: str, family: str, results: list[Result], *, backend: str) -> str:
    metric_names = list(results[0].metrics)
    header = ["model", "loss", "backend", "epochs", "seconds", "final train loss"]
    if family == "explicit":
        header.insert(2, "predicts")
    header += [f"test {name}" for name in metric_names]
    rows = []
    for result in results:
        row = [
            result.model,
            result.loss,
            backend,
            _cell(result.epochs),
            _cell(result.seconds, "{:.1f}"),
            _cell(result.final_loss, "{:.4f}"),
        ]
        if family == "explicit":
            row.insert(2, result.predicts)
        rows.append(row + [f"{result.metrics[name]:.4f}" for name in metric_names])
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    numeric = {
        header.index(h)
        for h in header
        if h not in ("model", "loss", "backend", "predicts")
    }

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                cell.rjust(width) if i in numeric else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + (":" if i in numeric else "-")
            for i, width in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([f"\n{title}\n", line(header), rule, *map(line, rows)])


def _cell(value: float | None, style: str = "{}") -> str:
    return "-" if value is None else style.format(value)


class _Progress:
    """A progress bar per epoch on stderr; one line per epoch where stderr is not a terminal."""

    WIDTH = 30
    REDRAW_SECONDS = 0.1  # a terminal needs no more than ten frames a second

    def __init__(self, name: str, epochs: int, stream: TextIO | None = None) -> None:
        self.name = name
        self.epochs = epochs
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.drawn_at = 0.0

    def batch(self, epoch: int, done: int, batches: int) -> None:
        now = time.perf_counter()
        if not self.live or (
            now - self.drawn_at < self.REDRAW_SECONDS and done < batches
        ):
            return
        self.drawn_at = now
        filled = self.WIDTH * done // batches
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self._label(epoch)} [{bar}] {done}/{batches}")
        self.stream.flush()

    def epoch(self, epoch: int, mean_loss: float) -> None:
        if self.live:  # over the bar, and past its batch count
            line = f"\r{self._label(epoch)} [{'#' * self.WIDTH}] loss {mean_loss:.4f}"
            self.stream.write(line.ljust(len(line) + 8) + "\n")
        else:
            self.stream.write(f"{self._label(epoch)}: loss {mean_loss:.4f}\n")
        self.stream.flush()

    def _label(self, epoch: int) -> str:
        return (
            f"{self.name:>14} epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}"
        )


def _plot(results: list[Result], path: Path) -> None:
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # a file, not a window
    pyplot = importlib.import_module("matplotlib.pyplot")
    ticker = importlib.import_module("matplotlib.ticker")
    columns = min(len(results), 4)
    rows = -(-len(results) // columns)
    figure, axes = pyplot.subplots(
        rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False
    )
    for axis in axes.flat[len(results) :]:
        axis.set_visible(False)
    for axis, result in zip(axes.flat, results, strict=False):
        epochs = range(1, len(result.curve) + 1)
        axis.plot(epochs, result.curve, marker="o", markersize=3)
        summary = ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items())
        axis.set_title(f"{result.loss}\n{summary}", fontsize=9)
        axis.set_xlabel("epoch")
        # whole epochs only, with room on either side: the locator falls back to
        # fractional ticks where it finds fewer whole ones than it wants (two, by
        # default), as around the one point of a one-epoch run
        axis.set_xlim(0.5, len(result.curve) + 0.5)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
        axis.set_ylabel("mean training loss")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
