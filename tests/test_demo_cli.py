"""The command line: ``python -m arraylosses demo`` end to end at a tiny size, and
every bad-argument path (exit status 2, a message naming the option, nothing
written).

The end-to-end run takes the ``xp`` fixture only to know which backends the nox
session under test has (numpy in every one, then its own: array-api-strict, torch
or jax; cupy where a GPU is); it drives the command line by the backend's name.
Dask is skipped: the training loop is not for Dask, and the CLI does not offer it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import support

import arraylosses
from arraylosses.demo import cli, evaluation, training
from arraylosses.demo.cli import main
from arraylosses.demo.data import synthetic

IMPLICIT_TITLE = "Implicit feedback: ranking unseen items"
EXPLICIT_TITLE = "Explicit feedback: predicting ratings"
IMPLICIT_ROWS = [
    ("random", "-"),
    ("popularity", "-"),
    ("factorization", "pointwise"),
    ("factorization", "bpr"),
    ("factorization", "hinge"),
    ("factorization", "adaptive_hinge"),
]
EXPLICIT_ROWS = [
    ("global mean", "-"),
    ("global like rate", "-"),
    ("factorization", "regression"),
    ("factorization", "poisson"),
    ("factorization", "logistic"),
]
# the columns whose cells are numbers ("-" for a baseline that has none)
NUMERIC = (
    "epochs",
    "seconds",
    "final train loss",
    "test MRR",
    "test P@10",
    "test RMSE",
)

Table = list[dict[str, str]]


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(
            zip(*(values.tolist() for values in columns.values()), strict=True)
        )
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny interactions file with ratings: 30 users, 40 items, ~240 rows."""
    data = synthetic(n_users=30, n_items=40, mean_interactions=8)
    assert data.ratings is not None
    folder = tmp_path_factory.mktemp("data")
    return write_csv(
        folder / "tiny.csv",
        {"user": data.users, "item": data.items, "rating": data.ratings},
    )


@pytest.fixture(scope="module")
def no_ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = synthetic(n_users=30, n_items=40, mean_interactions=8)
    folder = tmp_path_factory.mktemp("data")
    return write_csv(folder / "implicit.csv", {"user": data.users, "item": data.items})


def huge_ratings(folder: Path, *, varied: bool) -> Path:
    """An interactions file whose ratings are the tiny data's times 1e20, or all 1e20."""
    data = synthetic(n_users=30, n_items=40, mean_interactions=8)
    assert data.ratings is not None
    ratings = data.ratings * 1e20 if varied else np.full(len(data), 1e20)
    return write_csv(
        folder / "huge.csv", {"user": data.users, "item": data.items, "rating": ratings}
    )


def demo_arguments(data: Path, backend: str = "numpy") -> list[str]:
    # one batch larger than the ~190 training interactions: eager JAX compiles each
    # operation once per shape, and batches of 64 (64, 64, 64, 1) triple its time
    return [
        "demo",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--explicit",
        "--backend",
        backend,
    ]


def parse_tables(output: str) -> dict[str, Table]:
    """The printed tables by title, each a list of rows keyed by column name."""
    tables: dict[str, Table] = {}
    title = None
    header: list[str] = []
    for line in output.splitlines():
        if not line.startswith("|"):
            if line.strip():
                title, header = line.strip(), []
                tables[title] = []
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not header:
            header = cells
        elif not set(line) <= set("|-:"):  # not the rule under the header
            assert title is not None
            tables[title].append(dict(zip(header, cells, strict=True)))
    return tables


def run_demo(arguments: list[str]) -> tuple[int, str, str]:
    """``main(arguments)`` with its stdout and stderr, outside pytest's capture."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(arguments)
    return status, out.getvalue(), err.getvalue()


def check_rows(table: Table, rows: list[tuple[str, str]], backend: str) -> None:
    """The table has ``rows`` (model, loss) in order, on ``backend``, one epoch for
    each trained model, a "-" where a baseline has no training, numbers elsewhere."""
    assert [(row["model"], row["loss"]) for row in table] == rows
    for row in table:
        assert row["backend"] == backend
        trained = row["model"] == "factorization"
        for column in NUMERIC:
            if column not in row:
                continue
            if column.startswith("test ") or trained:
                assert math.isfinite(float(row[column])), (column, row)
            else:
                assert row[column] == "-", (column, row)
        if trained:
            assert row["epochs"] == "1"


@pytest.fixture(scope="module")
def numpy_tables(tiny: Path) -> dict[str, Table]:
    """The NumPy run's tables: what every backend must print."""
    status, out, _ = run_demo(demo_arguments(tiny))
    assert status == 0
    return parse_tables(out)


class TestDemo:
    def test_end_to_end(
        self,
        xp: ModuleType,
        tiny: Path,
        numpy_tables: dict[str, Table],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        backend = support.backend_of(xp)
        if backend == "dask":
            pytest.skip("the training loop is not for Dask: the CLI does not offer it")
        assert main(demo_arguments(tiny, backend)) == 0
        out, err = capsys.readouterr()
        tables = parse_tables(out)
        assert list(tables) == [IMPLICIT_TITLE, EXPLICIT_TITLE]
        check_rows(tables[IMPLICIT_TITLE], IMPLICIT_ROWS, backend)
        check_rows(tables[EXPLICIT_TITLE], EXPLICIT_ROWS, backend)
        for row in tables[IMPLICIT_TITLE]:
            assert 0 <= float(row["test MRR"]) <= 1
            assert 0 <= float(row["test P@10"]) <= 1
        # progress: one line per loss and epoch where stderr is not a terminal
        assert "Backend: " + backend in err
        for name in ("pointwise", "adaptive_hinge", "logistic"):
            assert f"{name} epoch 1/1: loss " in err
        # expected: the NumPy run's table, times aside. The training losses agree
        # within the printed precision (4 decimals: one unit of the last place for
        # float32 rounding). The test metrics get 1e-2: a gradient that cancels to 0
        # on one backend and to a rounding residual of ~1e-9 on another moves its
        # parameter by Adam's lr · g / (|g| + eps), in this one-step run up to lr
        # itself (seen: an item bias, 4e-4 apart), and near-tied items may then
        # swap ranks, each swap moving MRR or P@10 by about 1 / (10 × 30 test
        # users); seen: the adaptive hinge's MRR 0.1476 on NumPy and
        # array-api-strict, 0.1560 on PyTorch and JAX
        for title, table in tables.items():
            for row, reference in zip(table, numpy_tables[title], strict=True):
                for column, cell in row.items():
                    if column in ("backend", "seconds"):
                        continue
                    if column in NUMERIC and cell != "-":
                        tolerance = 1e-2 if column.startswith("test ") else 1.5e-4
                        assert float(cell) == pytest.approx(
                            float(reference[column]), abs=tolerance
                        ), (title, row, reference)
                    else:
                        assert cell == reference[column]

    def test_l2_of_zero_is_accepted(self, no_ratings: Path) -> None:
        # 0 is the documented way to train without the penalty (--help: "at least
        # 0"). expected: a run, and its row of the BPR model
        arguments = ["demo", "--data", str(no_ratings), "--epochs", "1", "--dim", "4"]
        status, out, _ = run_demo([*arguments, "--losses", "bpr", "--l2", "0"])
        assert status == 0
        rows = parse_tables(out)[IMPLICIT_TITLE]
        assert [row["loss"] for row in rows if row["model"] == "factorization"] == [
            "bpr"
        ]

    def test_named_losses_only(
        self, no_ratings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        arguments = ["demo", "--data", str(no_ratings), "--epochs", "1", "--dim", "4"]
        assert main([*arguments, "--losses", "bpr, hinge,bpr"]) == 0
        tables = parse_tables(capsys.readouterr().out)
        assert list(tables) == [IMPLICIT_TITLE]
        # the names are stripped and a repeat is trained once
        assert [row["loss"] for row in tables[IMPLICIT_TITLE]] == [
            "-",
            "-",
            "bpr",
            "hinge",
        ]

    def test_plot_writes_a_png(
        self, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        pytest.importorskip("matplotlib")
        plot = tmp_path / "curves.png"
        arguments = [*demo_arguments(tiny), "--losses", "bpr,regression", "--plot"]
        assert main([*arguments, str(plot)]) == 0
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"Training curves written to {plot}" in capsys.readouterr().err

    @pytest.mark.parametrize("epochs", [1, 2, 30])
    def test_plot_ticks_whole_epochs(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int
    ) -> None:
        # a one-epoch run once got ticks at 0.945, 0.960, ... around its one point
        pytest.importorskip("matplotlib")
        pyplot = pytest.importorskip("matplotlib.pyplot")
        figures = []
        monkeypatch.setattr(pyplot, "close", figures.append)
        curve = [1.0 / (epoch + 1) for epoch in range(epochs)]
        cli._plot([cli.Result(model="m", loss="bpr", curve=curve)], tmp_path / "c.png")
        (axis,) = [axis for axis in figures[0].axes if axis.get_visible()]
        low, high = axis.get_xlim()
        shown = [tick for tick in axis.get_xticks() if low <= tick <= high]
        # expected: whole epochs, the first and the last of them within the axis
        assert shown
        assert all(float(tick).is_integer() for tick in shown)
        assert low < 1
        assert high > epochs
        pyplot.close(figures[0])


def training_raises(
    monkeypatch: pytest.MonkeyPatch, error: BaseException | type[BaseException]
) -> None:
    """Make the demo's training raise ``error``, as if it arose during a run."""

    def raising(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(training, "train", raising)


def expect_usage_error(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main``; it must exit with status 2 and print nothing on stdout."""
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: python -m arraylosses" in err
    return err


class TestBadArguments:
    @pytest.mark.parametrize(
        ("arguments", "messages"),
        [
            (["--backend", "nope"], ["argument --backend", "invalid choice: 'nope'"]),
            (["--losses", "bpr,nope"], ["argument --losses", "unknown loss nope"]),
            (["--losses", ""], ["argument --losses", "expected at least one loss"]),
            (["--losses", " , "], ["argument --losses", "expected at least one loss"]),
            (
                ["--epochs", "0"],
                ["argument --epochs", "must be positive and finite, got 0"],
            ),
            (
                ["--epochs", "-1"],
                ["argument --epochs", "must be positive and finite, got -1"],
            ),
            (
                ["--epochs", "abc"],
                ["argument --epochs", "expected an integer, got 'abc'"],
            ),
            (["--epochs", "1.5"], ["argument --epochs", "expected an integer"]),
            (["--dim", "0"], ["argument --dim", "must be positive"]),
            (["--batch-size", "0"], ["argument --batch-size", "must be positive"]),
            (["--negatives", "0"], ["argument --negatives", "must be positive"]),
            (
                ["--learning-rate", "0"],
                ["argument --learning-rate", "must be positive"],
            ),
            # "=": argparse takes "-1e-3" after a space for an option, not a number
            (
                ["--learning-rate=-1e-3"],
                ["argument --learning-rate", "must be positive"],
            ),
            (
                ["--learning-rate", "nan"],
                ["argument --learning-rate", "must be positive"],
            ),
            (
                ["--learning-rate", "x"],
                ["argument --learning-rate", "expected a number"],
            ),
            (
                ["--l2", "-1"],
                ["argument --l2", "must be at least 0 and finite, got -1"],
            ),
            (["--l2", "nan"], ["argument --l2", "must be at least 0"]),
            (["--seed", "abc"], ["argument --seed", "expected an integer, got 'abc'"]),
            # NumPy's generators take no negative seed
            (["--seed", "-1"], ["argument --seed", "must be at least 0"]),
            (["--unknown-option"], ["unrecognized arguments: --unknown-option"]),
        ],
    )
    def test_option_values(
        self,
        tiny: Path,
        arguments: list[str],
        messages: list[str],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--epochs", "1", *arguments], capsys
        )
        for message in messages:
            assert message in err

    @pytest.mark.parametrize(
        ("option", "value"),
        [("--learning-rate", "inf"), ("--l2", "inf"), ("--learning-rate", "1e400")],
    )
    def test_non_finite_values(
        self,
        tiny: Path,
        option: str,
        value: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # an infinite learning rate or L2 penalty trains every model into NaNs (and
        # prints a table of them with status 0): refused like 0 or -1 are
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--epochs", "1", option, value], capsys
        )
        assert f"argument {option}" in err

    def test_data_missing_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        missing = tmp_path / "missing.csv"
        err = expect_usage_error(["demo", "--data", str(missing)], capsys)
        assert f"--data: {missing}: no such file" in err

    def test_data_that_is_a_folder(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        folder = tmp_path / "folder.csv"
        folder.mkdir()
        err = expect_usage_error(["demo", "--data", str(folder)], capsys)
        assert f"--data: {folder}: not a file" in err

    def test_data_not_utf8(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "latin1.csv"
        path.write_bytes("user,item\n1,caf\xe9\n".encode("latin-1"))
        err = expect_usage_error(["demo", "--data", str(path)], capsys)
        assert f"--data: {path}: not UTF-8 text" in err

    def test_errors_after_parsing_show_the_demos_usage(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        err = expect_usage_error(["demo", "--data", str(tmp_path / "a.csv")], capsys)
        assert "usage: python -m arraylosses demo" in err
        assert "python -m arraylosses demo: error: --data" in err

    def test_an_unknown_option_shows_the_demos_usage(
        self, tiny: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        err = expect_usage_error(["demo", "--data", str(tiny), "--bogus"], capsys)
        assert "usage: python -m arraylosses demo" in err
        assert (
            "python -m arraylosses demo: error: unrecognized arguments: --bogus" in err
        )

    @pytest.mark.parametrize("arguments", [["--bogus"], ["--bogus", "demo"]])
    def test_an_unknown_option_before_the_command(
        self, arguments: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        err = expect_usage_error(arguments, capsys)
        assert "usage: python -m arraylosses [-h]" in err
        assert "python -m arraylosses: error: unrecognized arguments: --bogus" in err

    def test_data_unknown_suffix(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "data.txt"
        path.write_text("user,item\n0,1\n")
        err = expect_usage_error(["demo", "--data", str(path)], capsys)
        assert "--data: " in err
        assert "unknown file type '.txt'" in err

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("user,rating\n0,4\n", "no 'item' column"),
            ("user,item\n0,x\n", "line 2"),
            ("", "empty file"),
            # longer than the csv module's field limit
            (f'user,item\n1,"{"2" * 200_000}"\n', "line 2: not valid CSV"),
        ],
        ids=["no-item-column", "bad-id", "empty", "oversized-field"],
    )
    def test_data_malformed_file(
        self,
        tmp_path: Path,
        content: str,
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        path = tmp_path / "bad.csv"
        path.write_text(content)
        err = expect_usage_error(["demo", "--data", str(path)], capsys)
        assert f"--data: {path}" in err
        assert message in err

    @pytest.mark.parametrize(
        "losses",
        [["--explicit"], ["--losses", "bpr,poisson"]],
        ids=["explicit", "named"],
    )
    def test_explicit_losses_need_ratings(
        self, no_ratings: Path, losses: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        err = expect_usage_error(["demo", "--data", str(no_ratings), *losses], capsys)
        assert "need ratings" in err
        assert f"{no_ratings} has no rating column" in err

    def test_plot_needs_a_png_suffix(
        self, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plot = tmp_path / "curves.jpg"
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--plot", str(plot)], capsys
        )
        assert f"--plot: {plot} must end in .png" in err
        assert list(tmp_path.iterdir()) == []

    def test_plot_must_not_be_a_folder(
        self, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plot = tmp_path / "curves.png"
        plot.mkdir()
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--plot", str(plot)], capsys
        )
        assert f"--plot: {plot} is a folder" in err

    @pytest.mark.skipif(
        not Path("/proc/self").is_dir(),
        reason="needs Linux's /proc, where no file can be made",
    )
    def test_plot_must_be_writable(
        self, tiny: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # not a read-only folder: these tests may run as root, which writes anywhere
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--plot", "/proc/curves.png"], capsys
        )
        assert "--plot: cannot write /proc/curves.png (" in err

    def test_plot_that_fails_after_training_says_so(
        self,
        tiny: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # a disk that fills during the run, say. expected: the tables, then exit 1
        pytest.importorskip("matplotlib")

        def failing(*_: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(cli, "_plot", failing)
        arguments = ["demo", "--data", str(tiny), "--losses", "bpr", "--epochs", "1"]
        with pytest.raises(SystemExit) as raised:
            main([*arguments, "--plot", str(tmp_path / "curves.png")])
        assert raised.value.code == 1
        out, err = capsys.readouterr()
        assert IMPLICIT_TITLE in out
        assert "error: --plot: [Errno 28] No space left on device" in err

    def test_plot_through_a_link_writes_its_target(
        self, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # a link to a file that does not exist yet: the check before training must
        # neither replace the link nor leave an empty target. expected: the plot is
        # written where the link points, and the link is still a link
        pytest.importorskip("matplotlib")
        target, link = tmp_path / "target.png", tmp_path / "link.png"
        link.symlink_to(target)
        arguments = ["demo", "--data", str(tiny), "--losses", "bpr", "--epochs", "1"]
        assert main([*arguments, "--plot", str(link)]) == 0
        assert link.is_symlink()
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        capsys.readouterr()

    def test_plot_needs_an_existing_folder(
        self, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plot = tmp_path / "no" / "such" / "curves.png"
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--plot", str(plot)], capsys
        )
        assert f"--plot: the folder {plot.parent} does not exist" in err
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        "bad",
        [
            ["--epochs", "0"],
            ["--backend", "nope"],
            ["--data", "missing.csv"],
            ["--explicit", "--data", "NO_RATINGS"],
        ],
    )
    def test_a_failed_run_writes_nothing(
        self,
        no_ratings: Path,
        tmp_path: Path,
        bad: list[str],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        pytest.importorskip("matplotlib")  # else --plot itself is the error
        bad = [str(no_ratings) if word == "NO_RATINGS" else word for word in bad]
        bad = [str(tmp_path / w) if w == "missing.csv" else w for w in bad]
        plot = tmp_path / "curves.png"
        expect_usage_error(["demo", "--epochs", "1", "--plot", str(plot), *bad], capsys)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        ("count", "shown"),
        [
            (0, "--backend cupy needs a CUDA GPU, and CuPy sees none\n"),
            (
                RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
                (
                    "--backend cupy needs a CUDA GPU, and CuPy sees none "
                    "(cudaErrorNoDevice: no CUDA-capable device is detected)\n"
                ),
            ),
        ],
        ids=["no-device", "no-driver"],
    )
    def test_cupy_without_a_gpu(
        self,
        tiny: Path,
        count: int | Exception,
        shown: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # CUDA's runtime as CuPy finds it without a GPU: a count of 0, or, without a
        # driver, CUDA's error (CuPy's CUDARuntimeError is a RuntimeError)
        def device_count() -> int:
            if isinstance(count, Exception):
                raise count
            return count

        runtime = SimpleNamespace(getDeviceCount=device_count)
        cupy = SimpleNamespace(cuda=SimpleNamespace(runtime=runtime))
        monkeypatch.setitem(sys.modules, cli.BACKEND_MODULES["cupy"], cupy)
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--backend", "cupy"], capsys
        )
        assert err.endswith(shown)

    def test_a_backend_that_is_not_installed(
        self,
        tiny: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # as if jax were not installed: its module cannot be imported
        monkeypatch.setitem(cli.BACKEND_MODULES, "jax", "no_such_module_for_this_test")
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--backend", "jax"], capsys
        )
        # quoted: an unquoted jax[cpu] is a glob pattern to zsh
        assert "--backend jax needs jax, not installed: pip install 'jax[cpu]'" in err

    def test_cupy_not_installed_names_the_wheels_for_each_cuda(
        self,
        tiny: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # None in sys.modules stops the import, as if CuPy were not installed
        monkeypatch.setitem(sys.modules, cli.BACKEND_MODULES["cupy"], None)
        err = expect_usage_error(
            ["demo", "--data", str(tiny), "--backend", "cupy"], capsys
        )
        shown = "pip install cupy-cuda13x, or cupy-cuda12x for CUDA 12"
        assert f"--backend cupy needs cupy, not installed: {shown} (" in err

    @pytest.mark.parametrize(
        ("version", "found"), [(None, "none is installed"), ("1.26.4", "found 1.26.4")]
    )
    def test_numpy_missing_or_before_2(
        self,
        tiny: Path,
        version: str | None,
        found: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # the demo's data and batches are NumPy's whatever the backend; as if NumPy
        # were not installed (None in sys.modules stops its import), or were 1.26.4
        if version is None:
            monkeypatch.setitem(sys.modules, "numpy", None)
        else:
            monkeypatch.setattr(np, "__version__", version)
        err = expect_usage_error(["demo", "--data", str(tiny)], capsys)
        assert f"the demo needs NumPy 2.0 or later ({found})" in err

    @pytest.mark.parametrize(
        ("options", "advice"),
        [
            # a learning rate of 1e30 sends the loss to inf or NaN within two epochs
            (
                ["--learning-rate", "1e30"],
                "; try a smaller --learning-rate (now 1e+30) or --l2 (now 1e-05)\n",
            ),
            # at the default learning rate, a weight decay of 1e300 sends the
            # parameters to inf in the first update: the message must name --l2,
            # not only the learning rate the user never set
            (
                ["--l2", "1e300"],
                "; try a smaller --learning-rate (now 0.005) or --l2 (now 1e+300)\n",
            ),
        ],
        ids=["learning-rate", "l2"],
    )
    def test_a_diverging_run_stops_with_an_error(
        self,
        tiny: Path,
        capsys: pytest.CaptureFixture[str],
        options: list[str],
        advice: str,
    ) -> None:
        # metrics of such a model mean nothing. expected: exit status 1, no table,
        # no epoch after the one whose loss was inf or NaN, and none of NumPy's
        # warnings of the overflow (which the tests' filter makes errors)
        arguments = ["demo", "--data", str(tiny), "--losses", "bpr", "--epochs", "5"]
        with pytest.raises(SystemExit) as raised:
            main([*arguments, *options])
        assert raised.value.code == 1
        out, err = capsys.readouterr()
        assert out == ""
        diverged = re.search(r"diverged: its loss was (nan|inf) in epoch (\d)", err)
        assert diverged is not None, err
        epoch = int(diverged[2])
        assert epoch < 5  # the premise: epochs were left to run
        assert f"bpr epoch {epoch}/5: loss {diverged[1]}" in err
        assert f"epoch {epoch + 1}/5" not in err
        assert err.endswith(advice)

    def test_a_diverging_explicit_run_names_the_ratings_scale(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # every rating 1e20: the first batch's squared error overflows float32
        # before any update, which no learning rate prevents (the global mean's
        # errors are 0). expected: the message gives the largest rating beside the
        # learning rate and l2
        huge = huge_ratings(tmp_path, varied=False)
        with pytest.raises(SystemExit) as raised:
            main(["demo", "--data", str(huge), "--losses", "regression"])
        assert raised.value.code == 1
        assert capsys.readouterr().err.endswith(
            "training with the regression loss diverged: its loss was inf in epoch 1; "
            "try a smaller --learning-rate (now 0.005) or --l2 (now 1e-05), or check "
            "the ratings' scale (the largest is 1e+20)\n"
        )

    @pytest.mark.parametrize(
        ("varied", "row"),
        [
            # every count 1e20: the Poisson loss trains on them without overflow (the
            # log-rate reaches about 46), and the global mean's errors are 0, but the
            # model's squared errors overflow its RMSE
            (False, "the poisson model"),
            # counts of 1e20 to 5e20: the global mean's squared errors overflow first
            (True, "global mean"),
        ],
        ids=["model", "baseline"],
    )
    def test_a_metric_of_inf_stops_the_run(
        self, tmp_path: Path, varied: bool, row: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # expected: exit status 1 and the metric named, not a table that shows inf
        huge = huge_ratings(tmp_path, varied=varied)
        with pytest.raises(SystemExit) as raised:
            main(["demo", "--data", str(huge), "--losses", "poisson", "--epochs", "1"])
        assert raised.value.code == 1
        out, err = capsys.readouterr()
        assert out == ""
        largest = "5e+20" if varied else "1e+20"
        assert err.endswith(
            f"error: {row}'s test RMSE is inf: float32 overflowed computing it; check "
            f"the ratings' scale (the largest is {largest})\n"
        )

    def test_parameters_that_diverge_in_the_last_update_stop_the_run(
        self, tiny: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # one batch, one epoch: the one update comes after the one loss, which stays
        # finite, and sends the parameters to inf or NaN. expected: exit status 1
        with pytest.raises(SystemExit) as raised:
            main(
                [
                    *["demo", "--data", str(tiny), "--losses", "bpr", "--epochs", "1"],
                    *["--batch-size", "100000", "--learning-rate", "1e300"],
                ]
            )
        assert raised.value.code == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert (
            "training with the bpr loss diverged: some of its parameters were inf or "
            "NaN after epoch 1; try a smaller --learning-rate (now 1e+300) or --l2 "
            "(now 1e-05)"
        ) in err

    @pytest.mark.parametrize(
        "error",
        [
            MemoryError(),
            # PyTorch's CPU allocator
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't "
                "allocate memory: you tried to allocate 37272235000 bytes."
            ),
            # JAX on a CPU, and XLA on a GPU
            RuntimeError("INTERNAL: Out of memory allocating 37272235000 bytes."),
            RuntimeError("RESOURCE_EXHAUSTED: Failed to allocate request for 34 GiB"),
            # NumPy, of a size past what it can address
            ValueError("array is too big; `arr.size * arr.dtype.itemsize` is larger"),
        ],
        ids=["MemoryError", "torch", "jax", "xla", "numpy-size"],
    )
    def test_out_of_memory_names_the_sizes(
        self,
        tiny: Path,
        error: Exception,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # as if --dim did not fit in memory, as each library says it
        training_raises(monkeypatch, error)
        with pytest.raises(SystemExit) as raised:
            main(["demo", "--data", str(tiny), "--losses", "bpr", "--dim", "7"])
        assert raised.value.code == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert "error: out of memory; lower --dim (now 7), --negatives (5)" in err

    def test_another_error_in_training_is_not_called_out_of_memory(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        training_raises(monkeypatch, ValueError("operands could not be broadcast"))
        with pytest.raises(ValueError, match="could not be broadcast"):
            main(["demo", "--data", str(tiny), "--losses", "bpr"])

    def test_a_dimension_too_large_to_allocate(
        self, tiny: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # no monkeypatch: NumPy refuses an embedding of 10^17 columns as too big
        arguments = ["demo", "--data", str(tiny), "--losses", "bpr"]
        with pytest.raises(SystemExit) as raised:
            main([*arguments, "--dim", str(10**17)])
        assert raised.value.code == 1
        assert "error: out of memory; lower --dim (now 10" in capsys.readouterr().err

    def test_out_of_memory_in_the_evaluation_names_the_dataset(
        self,
        tiny: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # the ranking scores every (user, item) pair at once, whatever the options:
        # as if those did not fit
        def raising(*_: object, **__: object) -> None:
            raise MemoryError

        monkeypatch.setattr(evaluation, "ranking_metrics", raising)
        with pytest.raises(SystemExit) as raised:
            main(["demo", "--data", str(tiny), "--losses", "bpr"])
        assert raised.value.code == 1
        err = capsys.readouterr().err
        assert "error: out of memory; the evaluation scores each of the 30 users" in err
        assert "--dim" not in err

    def test_ratings_must_be_counts_for_the_poisson_loss(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write_csv(
            tmp_path / "negative.csv",
            {
                "user": np.array([0, 0, 1, 1]),
                "item": np.array([0, 1, 0, 1]),
                "rating": np.array([3.0, -2.0, 1.0, 4.0]),
            },
        )
        err = expect_usage_error(
            ["demo", "--data", str(path), "--losses", "poisson"], capsys
        )
        assert (
            f"--data: the poisson loss takes the ratings as counts, and {path} has "
            "negative ones (the least is -2.0)"
        ) in err

    def test_a_user_needs_two_distinct_items_to_test_on(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # each user repeats one pair: two interactions, one item, nothing to hold out
        path = write_csv(
            tmp_path / "repeats.csv",
            {"user": np.array([0, 0, 1, 1]), "item": np.array([5, 5, 6, 6])},
        )
        err = expect_usage_error(["demo", "--data", str(path)], capsys)
        assert f"no user of {path} has two distinct items" in err

    def test_an_interrupted_run_exits_quietly(
        self,
        tiny: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # as if the user pressed Ctrl-C during training. expected: the shell's status
        # for SIGINT, 128 + 2, and one line, not a traceback
        training_raises(monkeypatch, KeyboardInterrupt)
        status = main(["demo", "--data", str(tiny), "--losses", "bpr"])
        assert status == 130
        out, err = capsys.readouterr()
        assert out == ""
        assert err.endswith("\npython -m arraylosses demo: interrupted\n")
        assert "Traceback" not in err

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as raised:
            main(["--version"])
        assert raised.value.code == 0
        assert capsys.readouterr().out == f"arraylosses {arraylosses.__version__}\n"

    def test_no_subcommand_prints_help(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main([]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert "usage: python -m arraylosses" in err
        assert "demo" in err

    def test_unknown_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        err = expect_usage_error(["train"], capsys)
        assert "invalid choice: 'train'" in err


def python_m_arraylosses(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m arraylosses ...`` in a fresh interpreter that imports the same
    package as this test process."""
    return fresh_python("-m", "arraylosses", *arguments)


def fresh_python(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python ...`` in a fresh interpreter that imports the same arraylosses as this
    test process (first on its path)."""
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        env=support.child_environment(),
        check=False,
        timeout=120,
    )


class TestPythonDashM:
    def test_help(self) -> None:
        process = python_m_arraylosses("--help")
        assert process.returncode == 0, process.stderr
        assert "usage: python -m arraylosses" in process.stdout
        assert "demo" in process.stdout

    def test_demo_help(self) -> None:
        process = python_m_arraylosses("demo", "--help")
        assert process.returncode == 0, process.stderr
        for option in ("--backend", "--losses", "--explicit", "--data", "--plot"):
            assert option in process.stdout

    def test_help_without_numpy(self) -> None:
        # the help lists the losses, which needs no NumPy; the demo itself refuses
        # to start without it. None in sys.modules stops NumPy's import
        script = (
            "import runpy, sys; sys.modules['numpy'] = None; "
            "sys.argv[1:] = sys.argv[1:] or ['demo', '--help']; "
            "runpy.run_module('arraylosses', run_name='__main__')"
        )
        for arguments, status in ((["demo", "--help"], 0), (["demo"], 2)):
            process = fresh_python("-c", script, *arguments)
            assert process.returncode == status, process.stderr
            if status == 0:
                assert "adaptive_hinge" in process.stdout
            else:
                assert "the demo needs NumPy 2.0 or later" in process.stderr

    def test_no_arguments(self) -> None:
        process = python_m_arraylosses()
        assert process.returncode == 2
        assert process.stdout == ""
        assert "usage: python -m arraylosses" in process.stderr
