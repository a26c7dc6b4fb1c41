"""The demo's data: the synthetic generator, the train/test split and the file loader.

Host-side NumPy tests (no ``xp`` fixture): the demo makes and splits its data
with NumPy before any array library sees them. Expected values are worked out
by hand in the comment beside them.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from arraylosses.demo.data import Interactions, load, synthetic, train_test_split

Triples = set[tuple[int, int, float]]
WriteParquet = Callable[[dict[str, object]], Path]


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic()


@pytest.fixture(scope="module")
def split(data: Interactions) -> tuple[Interactions, Interactions]:
    return train_test_split(data)


def make(
    users: list[int],
    items: list[int],
    ratings: list[float] | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
) -> Interactions:
    return Interactions(
        np.array(users, dtype=np.int64),
        np.array(items, dtype=np.int64),
        None if ratings is None else np.array(ratings, dtype=np.float32),
        max(users) + 1 if n_users is None else n_users,
        max(items) + 1 if n_items is None else n_items,
    )


def triples(data: Interactions) -> Triples:
    assert data.ratings is not None
    return set(
        zip(
            data.users.tolist(), data.items.tolist(), data.ratings.tolist(), strict=True
        )
    )


def assert_same(left: Interactions, right: Interactions) -> None:
    np.testing.assert_array_equal(left.users, right.users)
    np.testing.assert_array_equal(left.items, right.items)
    if left.ratings is None or right.ratings is None:
        assert left.ratings is right.ratings is None
    else:
        np.testing.assert_array_equal(left.ratings, right.ratings)
    assert (left.n_users, left.n_items) == (right.n_users, right.n_items)


class TestInteractions:
    def test_len_is_the_number_of_interactions(self) -> None:
        assert len(make([0, 1, 1], [2, 0, 2])) == 3

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"users": np.zeros((2, 1), dtype=np.int64)},
                "users must be a 1-d numpy array",
            ),
            ({"users": [0, 1]}, "users must be a 1-d numpy array, got list"),
            (
                {"users": np.array(0, dtype=np.int64)},
                r"users must be a 1-d numpy array, got an array of shape \(\)",
            ),
            (
                {"items": np.array([0, 1], dtype=np.int32)},
                "items must have dtype int64",
            ),
            (
                {"items": np.array([0], dtype=np.int64)},
                "items has 1 entries but users has 2",
            ),
            (
                {"ratings": np.array([1, 2], dtype=np.float64)},
                "ratings must have dtype float32",
            ),
            ({"ratings": np.array([1], dtype=np.float32)}, "ratings has 1 entries"),
            (
                {"ratings": np.array([1, np.nan], dtype=np.float32)},
                "ratings must be finite",
            ),
            ({"n_users": 1}, r"users must lie in \[0, n_users\) = \[0, 1\)"),
            (
                {"users": np.array([0, -1], dtype=np.int64)},
                r"users must lie in \[0, n_users\) = \[0, 2\), found ids from -1",
            ),
            (
                {"n_items": 3},
                r"items must lie in \[0, n_items\) = \[0, 3\), found ids from 0 to 3",
            ),
            ({"n_items": -1}, "n_items must be non-negative"),
        ],
    )
    def test_refuses_bad_fields_naming_them(
        self, change: dict[str, object], message: str
    ) -> None:
        fields: dict[str, Any] = {
            "users": np.array([0, 1], dtype=np.int64),
            "items": np.array([0, 3], dtype=np.int64),
            "ratings": np.array([1, 5], dtype=np.float32),
            "n_users": 2,
            "n_items": 4,
        }
        fields.update(change)
        with pytest.raises(ValueError, match=message):
            Interactions(**fields)

    def test_accepts_no_interactions_and_no_ratings(self) -> None:
        empty = np.array([], dtype=np.int64)
        assert len(Interactions(empty, empty, None, 0, 0)) == 0


class TestSynthetic:
    def test_same_seed_same_data(self, data: Interactions) -> None:
        assert_same(synthetic(seed=0), data)

    def test_other_seed_other_data(self, data: Interactions) -> None:
        other = synthetic(seed=1)
        assert triples(other) != triples(data)

    def test_shapes_dtypes_and_ranges(self, data: Interactions) -> None:
        assert (data.n_users, data.n_items) == (1000, 1000)
        assert data.users.dtype == data.items.dtype == np.int64
        assert data.ratings is not None
        assert data.ratings.dtype == np.float32
        assert data.users.shape == data.items.shape == data.ratings.shape
        # 1000 users, about 50 each: the demo's budget is 40k to 60k interactions
        assert 40_000 <= len(data) <= 60_000
        per_user = np.bincount(data.users, minlength=data.n_users)
        # at least 5 each, at most n_items // 2 = 500
        assert per_user.min() >= 5
        assert per_user.max() <= 500

    def test_options_size_the_data(self) -> None:
        small = synthetic(n_users=30, n_items=40, rank=2, mean_interactions=8, seed=3)
        assert (small.n_users, small.n_items) == (30, 40)
        per_user = np.bincount(small.users, minlength=30)
        assert per_user.min() >= 5  # every user is there, with the minimum of 5
        assert per_user.max() <= 20  # n_items // 2
        assert small.items.max() < 40

    def test_sorted_by_user_then_item_without_repeats(self, data: Interactions) -> None:
        pairs = data.users * data.n_items + data.items
        assert (np.diff(pairs) > 0).all()

    def test_popularity_is_skewed(self, data: Interactions) -> None:
        def top_decile_share(interactions: Interactions) -> float:
            counts = np.sort(np.bincount(interactions.items))[::-1]
            return float(counts[: interactions.n_items // 10].sum() / counts.sum())

        # Zipf 1 over 1000 items would give the top 100 H(100)/H(1000) = 0.69 with
        # replacement; without replacement popular items saturate: about 0.39.
        assert top_decile_share(data) > 0.3
        # the planted preferences alone make some items popular too: about 0.20
        assert top_decile_share(synthetic(popularity_skew=0.0)) < 0.3

    def test_ratings_are_integers_1_to_5_and_all_used(self, data: Interactions) -> None:
        assert data.ratings is not None
        assert set(np.unique(data.ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}

    def test_ratings_are_learnable_by_a_low_rank_model(
        self, split: tuple[Interactions, Interactions]
    ) -> None:
        # A few sweeps of ridge alternating least squares at the planted rank 8
        # must beat predicting the global mean clearly: the ratings follow the
        # planted preferences, not noise. (It reaches about 0.83 against 1.08.)
        train, test = split
        assert train.ratings is not None
        assert test.ratings is not None
        mean = float(train.ratings.mean())
        residual = train.ratings - mean
        rng = np.random.default_rng(0)
        item_factors = rng.standard_normal((train.n_items, 8))
        for _ in range(5):
            user_factors = ridge_rows(train.users, train.items, residual, item_factors)
            item_factors = ridge_rows(train.items, train.users, residual, user_factors)
        predicted = mean + np.einsum(
            "ij,ij->i", user_factors[test.users], item_factors[test.items]
        )
        learned = math.sqrt(np.mean((test.ratings - predicted) ** 2))
        baseline = math.sqrt(np.mean((test.ratings - mean) ** 2))
        assert learned < 0.85 * baseline

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("n_users", 0),
            ("n_items", 9),
            ("rank", 0),
            ("mean_interactions", 0),
            ("popularity_skew", -1.0),
            ("popularity_skew", math.inf),
        ],
    )
    def test_refuses_bad_options_naming_them(self, option: str, value: float) -> None:
        options: dict[str, Any] = {option: value}
        with pytest.raises(ValueError, match=option):
            synthetic(**options)


def ridge_rows(
    rows: npt.NDArray[np.int64],
    columns: npt.NDArray[np.int64],
    targets: npt.NDArray[np.float32],
    column_factors: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Each row's ridge regression (penalty 5) of its targets on its columns' factors."""
    n_rows, rank = int(rows.max()) + 1, column_factors.shape[1]
    features = column_factors[columns]
    gram = np.zeros((n_rows, rank, rank))
    np.add.at(gram, rows, features[:, :, None] * features[:, None, :])
    moments = np.zeros((n_rows, rank))
    np.add.at(moments, rows, features * targets[:, None])
    solved = np.linalg.solve(gram + 5.0 * np.eye(rank), moments[..., None])
    return np.asarray(solved[..., 0], dtype=np.float64)


class TestTrainTestSplit:
    def test_halves_are_disjoint_and_make_up_the_data(
        self, data: Interactions, split: tuple[Interactions, Interactions]
    ) -> None:
        train, test = split
        assert len(train) + len(test) == len(data)
        assert not triples(train) & triples(test)
        # as (user, item, rating) triples: the ratings stay with their pairs
        assert triples(train) | triples(test) == triples(data)
        for half in split:
            assert (half.n_users, half.n_items) == (data.n_users, data.n_items)

    def test_each_user_puts_a_fifth_in_test(
        self, data: Interactions, split: tuple[Interactions, Interactions]
    ) -> None:
        per_user = np.bincount(data.users, minlength=data.n_users)
        in_test = np.bincount(split[1].users, minlength=data.n_users)
        # every synthetic user has >= 5 interactions, so rint(0.2 n) is 1 .. n - 1
        np.testing.assert_array_equal(in_test, np.rint(0.2 * per_user))

    def test_rules_for_few_interactions(self) -> None:
        # user 0 has 1 interaction, user 1 has 2, user 2 has 10
        users = [0] + [1] * 2 + [2] * 10
        data = make(users, list(range(13)), n_users=4)
        train, test = train_test_split(data, test_fraction=0.2, seed=5)
        # by hand: user 0 stays in train; user 1: rint(0.4) = 0, raised to 1;
        # user 2: rint(2.0) = 2; user 3 has none
        assert np.bincount(test.users, minlength=4).tolist() == [0, 1, 2, 0]
        assert np.bincount(train.users, minlength=4).tolist() == [1, 1, 8, 0]
        # a fraction near 1 still leaves one interaction in train
        train, test = train_test_split(data, test_fraction=0.99)
        assert np.bincount(train.users, minlength=4).tolist() == [1, 1, 1, 0]

    def test_a_repeated_pair_goes_to_one_side_whole(self) -> None:
        # an event log repeats pairs: user 0 has item 1 three times and items 2 to
        # 5 once, user 1 item 0 twice and item 1 once. by hand: user 0 has 5
        # distinct items, rint(0.4 · 5) = 2 in test; user 1 has 2, rint(0.8) = 1
        users = [0, 0, 1, 0, 0, 1, 0, 0, 1]
        items = [1, 2, 0, 1, 3, 0, 4, 5, 1]
        for seed in range(20):
            train, test = train_test_split(
                make(users, items), test_fraction=0.4, seed=seed
            )
            train_pairs = set(
                zip(train.users.tolist(), train.items.tolist(), strict=True)
            )
            test_pairs = set(zip(test.users.tolist(), test.items.tolist(), strict=True))
            assert not train_pairs & test_pairs, seed
            assert len(train) + len(test) == len(users)
            distinct_in_test = np.bincount(
                [user for user, _ in test_pairs], minlength=2
            )
            assert distinct_in_test.tolist() == [2, 1], seed

    def test_keeps_the_original_order_and_no_ratings(self) -> None:
        data = make([0, 0, 0, 1, 1], [4, 1, 3, 0, 2])
        for half in train_test_split(data, test_fraction=0.5):
            assert half.ratings is None
            # pairs stay in the order they had: user 0's items in order 4, 1, 3
            order = {(0, 4): 0, (0, 1): 1, (0, 3): 2, (1, 0): 3, (1, 2): 4}
            places = [order[pair] for pair in zip(half.users, half.items, strict=True)]
            assert places == sorted(places)

    def test_same_seed_same_split(
        self, data: Interactions, split: tuple[Interactions, Interactions]
    ) -> None:
        again = train_test_split(data, seed=0)
        assert_same(again[0], split[0])
        assert_same(again[1], split[1])
        other = train_test_split(data, seed=1)
        assert triples(other[1]) != triples(split[1])

    @pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, math.nan])
    def test_refuses_a_fraction_outside_0_1(self, fraction: float) -> None:
        with pytest.raises(ValueError, match="test_fraction"):
            train_test_split(make([0, 0], [0, 1]), test_fraction=fraction)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def in_file(path: Path, rest: str = "") -> str:
    """A ``match`` pattern: the message names ``path`` and then says ``rest``."""
    return re.escape(str(path)) + rest


class TestLoadCSV:
    def test_round_trip_renumbers_ids(self, tmp_path: Path) -> None:
        path = write(
            tmp_path / "ratings.csv", "user,item,rating\n10,7,4\n3,7,5\n10,-2,1.5\n"
        )
        data = load(path)
        # users 3, 10 -> 0, 1; items -2, 7 -> 0, 1 (increasing order)
        assert data.users.tolist() == [1, 0, 1]
        assert data.items.tolist() == [1, 1, 0]
        assert data.ratings is not None
        assert data.ratings.tolist() == [4.0, 5.0, 1.5]
        assert (data.n_users, data.n_items) == (2, 2)
        assert data.users.dtype == data.items.dtype == np.int64
        assert data.ratings.dtype == np.float32

    def test_round_trip_of_synthetic_data(self, tmp_path: Path) -> None:
        original = synthetic(n_users=40, n_items=30, mean_interactions=6, seed=2)
        assert original.ratings is not None
        lines = ["user,item,rating"] + [
            f"{u},{i},{r:g}"
            for u, i, r in zip(
                original.users, original.items, original.ratings, strict=True
            )
        ]
        path = write(tmp_path / "synthetic.csv", "\n".join(lines) + "\n")
        loaded = load(str(path))
        # every user has interactions, but an item may have none and is dropped
        item_ids = np.unique(original.items)
        assert_same(
            loaded,
            Interactions(
                original.users,
                np.searchsorted(item_ids, original.items).astype(np.int64),
                original.ratings,
                original.n_users,
                len(item_ids),
            ),
        )

    def test_rating_is_optional_and_other_columns_ignored(self, tmp_path: Path) -> None:
        text = "timestamp,Item , USER,note\n99,5,1,a\n98,6,1,b\n"
        data = load(write(tmp_path / "implicit.csv", text))
        assert data.ratings is None
        assert data.users.tolist() == [0, 0]
        assert data.items.tolist() == [0, 1]

    def test_tsv_with_byte_order_mark_and_blank_lines(self, tmp_path: Path) -> None:
        text = "\ufeffuser\titem\trating\n1\t2\t3\n\n 4 \t+5\t-1e0\n"
        data = load(write(tmp_path / "ratings.TSV", text))
        assert data.users.tolist() == [0, 1]
        assert data.items.tolist() == [0, 1]
        assert data.ratings is not None
        assert data.ratings.tolist() == [3.0, -1.0]

    @pytest.mark.parametrize(
        ("text", "rest"),
        [
            ("", ": empty file"),
            ("user,item\n", ": no interactions, only a header row"),
            (
                "item,rating\n1,2\n",
                r", line 1: no 'user' column; the columns are \['item', 'rating'\]",
            ),
            ("user,Item,ITEM\n1,2,3\n", ", line 1: more than one 'item' column"),
            ("user,item\n1,2\n3.5,4\n", ", line 3: user id '3.5' is not an integer"),
            ("user,item\n1,abc\n", ", line 2: item id 'abc' is not an integer"),
            ("user,item\n1,2\n\n,4\n", ", line 4: user id '' is not an integer"),
            (
                "user,item\n1,99999999999999999999\n",
                ", line 2: item id .* does not fit in int64",
            ),
            ("user,item,rating\n1,2,x\n", ", line 2: rating 'x' is not a number"),
            ("user,item,rating\n1,2,\n", ", line 2: rating '' is not a number"),
            (
                "user,item,rating\n1,2,3\n1,3,nan\n",
                ", line 3: rating 'nan' is not a finite",
            ),
            ("user,item,rating\n1,2,-inf\n", ", line 2: rating '-inf' is not a finite"),
            (
                "user,item,rating\n1,2,1e39\n",
                ", line 2: rating '1e39' is not a finite float32",
            ),
            ("user,item,rating\n1,2\n", ", line 2: 2 fields, expected at least 3"),
        ],
    )
    def test_malformed_file_names_file_and_line(
        self, tmp_path: Path, text: str, rest: str
    ) -> None:
        path = write(tmp_path / "bad.csv", text)
        with pytest.raises(ValueError, match=in_file(path, rest)):
            load(path)


class TestLoadErrors:
    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.csv"
        with pytest.raises(FileNotFoundError, match=in_file(path, ": no such file")):
            load(path)

    def test_unknown_suffix(self, tmp_path: Path) -> None:
        path = write(tmp_path / "ratings.txt", "user,item\n1,2\n")
        with pytest.raises(
            ValueError, match=in_file(path, ": unknown file type '.txt'")
        ):
            load(path)

    @pytest.mark.parametrize(
        ("name", "content"),
        [
            ("bad.csv", b"user,item\n1,x\n"),
            ("bad.parquet", b"not parquet at all"),
            ("bad.json", b"{}"),
        ],
    )
    def test_a_failing_load_writes_nothing(
        self, tmp_path: Path, name: str, content: bytes
    ) -> None:
        pytest.importorskip("pyarrow")
        (tmp_path / name).write_bytes(content)

        def snapshot() -> dict[str, tuple[int, int]]:
            return {
                str(path.relative_to(tmp_path)): (
                    path.stat().st_size,
                    path.stat().st_mtime_ns,
                )
                for path in tmp_path.rglob("*")
            }

        before = snapshot()
        with pytest.raises(ValueError, match=re.escape(name)):
            load(tmp_path / name)
        assert snapshot() == before


class TestLoadParquet:
    @pytest.fixture
    def write_parquet(self, tmp_path: Path) -> WriteParquet:
        pyarrow = pytest.importorskip("pyarrow")
        parquet = pytest.importorskip("pyarrow.parquet")

        def write_table(columns: dict[str, object]) -> Path:
            path = tmp_path / "interactions.parquet"
            parquet.write_table(pyarrow.table(columns), path)
            return path

        return write_table

    def test_round_trip(self, write_parquet: WriteParquet) -> None:
        path = write_parquet(
            {
                "User": np.array([10, 3, 10], dtype=np.int32),
                "item": np.array([7, 7, 2], dtype=np.uint64),
                "rating": np.array([4.0, 5.0, 1.5]),
                "extra": ["a", "b", "c"],
            }
        )
        data = load(path)
        # users 3, 10 -> 0, 1; items 2, 7 -> 0, 1
        assert data.users.tolist() == [1, 0, 1]
        assert data.items.tolist() == [1, 1, 0]
        assert data.ratings is not None
        assert data.ratings.tolist() == [4.0, 5.0, 1.5]
        assert data.ratings.dtype == np.float32
        assert (data.n_users, data.n_items) == (2, 2)

    def test_a_damaged_footer_is_named(self, write_parquet: WriteParquet) -> None:
        # pyarrow raises OSError, not its ArrowException, for a footer it cannot
        # decode. expected: the loader's ValueError naming the file
        path = write_parquet({"user": [1, 2], "item": [3, 4]})
        content = bytearray(path.read_bytes())
        # the file ends with its footer's metadata, the metadata's length and b"PAR1"
        length = int.from_bytes(content[-8:-4], "little")
        content[-8 - length : -8] = bytes(length)
        path.write_bytes(bytes(content))
        with pytest.raises(
            ValueError, match=rf"^{re.escape(str(path))}: not a readable"
        ):
            load(path)

    def test_integer_ratings_and_no_ratings(self, write_parquet: WriteParquet) -> None:
        with_ratings = load(write_parquet({"user": [1], "item": [2], "rating": [5]}))
        assert with_ratings.ratings is not None
        assert with_ratings.ratings.tolist() == [5.0]
        assert load(write_parquet({"user": [1], "item": [2]})).ratings is None

    @pytest.mark.parametrize(
        ("columns", "rest"),
        [
            (
                {"user": [1], "rating": [2.0]},
                r": no 'item' column; the columns are \['user', 'rating'\]",
            ),
            (
                {
                    "user": np.array([], dtype=np.int64),
                    "item": np.array([], dtype=np.int64),
                },
                ": no interactions",
            ),
            (
                {"user": [1.0], "item": [2]},
                ": column 'user' has type double, expected integers",
            ),
            (
                {"user": ["a"], "item": [2]},
                ": column 'user' has type string, expected integers",
            ),
            ({"user": [1, 2], "item": [2, None]}, ", row 2: column 'item' is null"),
            (
                {"user": [1], "item": [2], "rating": ["5"]},
                ": column 'rating' has type string, expected numbers",
            ),
            (
                {"user": [1, 2], "item": [2, 3], "rating": [1.0, math.nan]},
                ", row 2: rating nan is not a finite",
            ),
            (
                {"user": [1], "item": [2], "rating": [1e39]},
                ", row 1: rating 1e\\+39 is not a finite float32",
            ),
        ],
    )
    def test_malformed_table_names_file(
        self, write_parquet: WriteParquet, columns: dict[str, object], rest: str
    ) -> None:
        path = write_parquet(columns)
        with pytest.raises(ValueError, match=in_file(path, rest)):
            load(path)

    def test_without_pyarrow_says_how_to_install_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "interactions.parquet"
        path.write_bytes(b"PAR1")
        # a None entry in sys.modules makes the import raise ImportError
        monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
        with pytest.raises(ImportError, match="pip install pyarrow"):
            load(path)
