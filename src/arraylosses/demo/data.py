"""Interaction data for the demo: a synthetic generator, a file loader and a split.

Host-side NumPy only: the data are made and split here, and the training loop
moves them to whichever array library it trains with.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Interactions",
    "distinct_pairs",
    "generator",
    "load",
    "synthetic",
    "train_test_split",
]

_INT64 = np.iinfo(np.int64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_SUFFIXES = (*_CSV_DELIMITERS, ".parquet")

# Every synthetic user has a few interactions for test and most left to train on.
_MIN_USER_INTERACTIONS = 5
# Scale of the planted preference in the affinity: large enough that the oracle
# ranks far better than popularity, small enough that users still sample widely.
_PREFERENCE_STRENGTH = 2.0
# Explicit ratings: 3 + slope * (standardised preference) + noise, rounded into 1..5.
_RATING_SLOPE = 1.0
_RATING_NOISE = 0.5
# Gumbel keys are drawn for this many (user, item) pairs at a time, to bound memory.
_BLOCK_PAIRS = 1 << 22
# What the demo draws at random, each from a stream of its own of the one --seed
_STREAMS = ("data", "split", "tables", "batches", "random baseline")


def generator(seed: int, purpose: str) -> np.random.Generator:
    """NumPy's generator for ``purpose``, one of the demo's random draws, from
    ``seed``.

    Each purpose takes its own child of ``SeedSequence(seed)`` (its spawn key is
    the purpose's place in the list), so that one seed gives every purpose
    independent numbers: one generator seeded alike for each would repeat its
    draws, and the model's first user table would be the synthetic users'
    planted factors.
    """
    key = _STREAMS.index(purpose)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


@dataclass(frozen=True)
class Interactions:
    """(user, item[, rating]) interactions as parallel NumPy arrays.

    Parameters
    ----------
    users, items : numpy.ndarray
        int64 arrays of shape ``(n,)``: the user and item of each interaction,
        in ``[0, n_users)`` and ``[0, n_items)``.
    ratings : numpy.ndarray or None
        float32 array of shape ``(n,)``, finite, aligned with ``users``; None for
        implicit-only data.
    n_users, n_items : int
        The number of users and items (some may have no interactions).

    Raises
    ------
    ValueError
        Naming the field: an array that is not 1-d or not of its dtype, lengths
        that differ, an id out of range, a non-finite rating or a negative count.
    """

    users: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float32] | None
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        """Check the fields (see the class docstring)."""
        for name, count in (("n_users", self.n_users), ("n_items", self.n_items)):
            if count < 0:
                msg = f"{name} must be non-negative, got {count}"
                raise ValueError(msg)
        arrays: dict[str, tuple[npt.NDArray[Any], type[Any]]] = {
            "users": (self.users, np.int64),
            "items": (self.items, np.int64),
        }
        if self.ratings is not None:
            arrays["ratings"] = (self.ratings, np.float32)
        for name, (array, dtype) in arrays.items():
            _check_array(name, array, dtype)
            if len(array) != len(self.users):
                msg = f"{name} has {len(array)} entries but users has {len(self.users)}"
                raise ValueError(msg)
        for name, ids, count in (
            ("users", self.users, self.n_users),
            ("items", self.items, self.n_items),
        ):
            if ids.size and (ids.min() < 0 or ids.max() >= count):
                msg = (
                    f"{name} must lie in [0, n_{name}) = [0, {count}), "
                    f"found ids from {ids.min()} to {ids.max()}"
                )
                raise ValueError(msg)
        if self.ratings is not None and not np.isfinite(self.ratings).all():
            msg = "ratings must be finite"
            raise ValueError(msg)

    def __len__(self) -> int:
        """Return the number of interactions."""
        return len(self.users)


def _check_array(name: str, array: object, dtype: type[Any]) -> None:
    if not isinstance(array, np.ndarray) or array.ndim != 1:
        msg = f"{name} must be a 1-d numpy array, got {_describe(array)}"
        raise ValueError(msg)
    if array.dtype != dtype:
        msg = f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}"
        raise ValueError(msg)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


def synthetic(
    *,
    n_users: int = 1000,
    n_items: int = 1000,
    rank: int = 8,
    mean_interactions: int = 50,
    popularity_skew: float = 1.0,
    seed: int = 0,
) -> Interactions:
    """Generate implicit and explicit feedback with planted low-rank preferences.

    Users and items get standard normal factors of ``rank`` columns; the planted
    preference of user u for item i is ``p_ui = <x_u, y_i> / sqrt(rank)`` (about
    standard normal). Items get a Zipf-like log-popularity
    ``b_i = -popularity_skew * log(r_i + 1)``, centred, where ``r_i`` is the
    item's place in a random order. Each user draws a number of interactions
    (gamma distributed around ``mean_interactions``, clipped to
    ``[5, n_items // 2]``) without replacement, with probability proportional
    to ``exp(2 * p_ui + b_i)``. Each interaction's rating is
    ``3 + z_ui + N(0, 0.5**2)`` rounded and clipped to 1..5, where ``z_ui`` is
    ``p_ui`` standardised over the interactions. So both signals are learnable
    by a rank-``rank`` factorization with item biases.

    Parameters
    ----------
    n_users, n_items : int
        Numbers of users (at least 1) and items (at least 10).
    rank : int
        Rank of the planted preferences (at least 1).
    mean_interactions : int
        Typical number of interactions per user (at least 1).
    popularity_skew : float
        Zipf exponent of item popularity (non-negative; 0 for none).
    seed : int
        The root of the draws' stream (see :func:`generator`); equal seeds give
        equal data.

    Returns
    -------
    Interactions
        Sorted by user then item, with no repeated (user, item) pair and with
        ratings.

    Raises
    ------
    ValueError
        If an option is out of its range (the message names it).
    """
    for name, value, least in (
        ("n_users", n_users, 1),
        ("n_items", n_items, 2 * _MIN_USER_INTERACTIONS),
        ("rank", rank, 1),
        ("mean_interactions", mean_interactions, 1),
    ):
        if value < least:
            msg = f"{name} must be at least {least}, got {value}"
            raise ValueError(msg)
    if not math.isfinite(popularity_skew) or popularity_skew < 0:
        msg = f"popularity_skew must be finite and non-negative, got {popularity_skew}"
        raise ValueError(msg)

    rng = generator(seed, "data")
    user_factors = rng.standard_normal((n_users, rank))
    item_factors = rng.standard_normal((n_items, rank))
    log_popularity = -popularity_skew * np.log(rng.permutation(n_items) + 1.0)
    log_popularity -= log_popularity.mean()
    # gamma with shape 2: users' activity varies, as in real data
    activity = rng.gamma(shape=2.0, scale=mean_interactions / 2.0, size=n_users)
    counts = np.clip(np.rint(activity), _MIN_USER_INTERACTIONS, n_items // 2)

    users, items = _sample_without_replacement(
        rng,
        user_factors * (_PREFERENCE_STRENGTH / math.sqrt(rank)),
        item_factors,
        log_popularity,
        counts.astype(np.int64),
    )
    order = np.lexsort((items, users))
    users, items = users[order], items[order]

    preference = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
    preference = (preference - preference.mean()) / preference.std()
    ratings = 3.0 + _RATING_SLOPE * preference
    ratings += rng.normal(scale=_RATING_NOISE, size=len(ratings))
    ratings = np.clip(np.rint(ratings), 1, 5).astype(np.float32)
    return Interactions(users, items, ratings, n_users, n_items)


def _sample_without_replacement(
    rng: np.random.Generator,
    user_factors: npt.NDArray[np.float64],
    item_factors: npt.NDArray[np.float64],
    item_bias: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each user's ``counts[u]`` items, drawn with probability ∝ exp(affinity).

    The top k of affinity + Gumbel noise is a sample of k without replacement
    with those probabilities (the Gumbel top-k trick), so whole blocks of users
    are drawn with one argsort.
    """
    n_users, n_items = len(user_factors), len(item_factors)
    block = max(1, _BLOCK_PAIRS // n_items)
    most = int(counts.max())
    users, items = [], []
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        keys = user_factors[start:stop] @ item_factors.T + item_bias
        keys += rng.gumbel(size=keys.shape)
        ranked = np.argsort(-keys, axis=1)[:, :most]
        taken = np.arange(most) < counts[start:stop, None]
        users.append(np.nonzero(taken)[0] + start)
        items.append(ranked[taken])
    all_users, all_items = np.concatenate(users), np.concatenate(items)
    return all_users.astype(np.int64), all_items.astype(np.int64)


def train_test_split(
    data: Interactions, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Split each user's distinct (user, item) pairs at random into train and
    test, every copy of a pair with it.

    A user with n >= 2 distinct items puts ``rint(test_fraction * n)`` of them,
    but at least 1 and at most n - 1, in test; a user with one item stays in
    train. A pair that repeats in ``data`` (an event log's repeats) goes to one
    side whole, so that no test pair is also a training pair. Both halves keep
    ``n_users``, ``n_items`` and the ratings aligned, and keep the interactions
    in their original order.

    Parameters
    ----------
    data : Interactions
        The interactions to split.
    test_fraction : float
        Fraction of each user's interactions that goes to test, in (0, 1).
    seed : int
        The root of the draws' stream (see :func:`generator`); equal seeds give
        equal splits.

    Returns
    -------
    train, test : Interactions

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1).
    """
    if not 0 < test_fraction < 1:
        msg = f"test_fraction must be in (0, 1), got {test_fraction}"
        raise ValueError(msg)
    rng = generator(seed, "split")
    pair_of, first_rows = distinct_pairs(data)
    pair_users = data.users[first_rows]
    per_user = np.bincount(pair_users, minlength=data.n_users)
    # np.clip applies the upper bound last, so a lone item stays in train
    n_test = np.clip(np.rint(test_fraction * per_user), 1, per_user - 1)
    # Shuffle each user's pairs: order by user, then by a random key.
    shuffled = np.lexsort((rng.random(len(first_rows)), pair_users))
    first_of_user = np.cumsum(per_user) - per_user
    place = np.empty(len(first_rows), dtype=np.int64)
    place[shuffled] = np.arange(len(first_rows)) - first_of_user[pair_users[shuffled]]
    in_test = (place < n_test[pair_users])[pair_of]
    return _subset(data, ~in_test), _subset(data, in_test)


def distinct_pairs(
    data: Interactions,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each interaction's pair, numbered in the order pairs first appear, and the
    row where each pair first appears: without repeats, the rows themselves."""
    pair_ids = data.users * data.n_items + data.items
    _, first_rows, pair_of = np.unique(pair_ids, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first_rows)
    number = np.empty_like(by_appearance)
    number[by_appearance] = np.arange(len(by_appearance))
    return number[pair_of], first_rows[by_appearance]


def _subset(data: Interactions, keep: npt.NDArray[np.bool_]) -> Interactions:
    ratings = None if data.ratings is None else data.ratings[keep]
    return Interactions(
        data.users[keep], data.items[keep], ratings, data.n_users, data.n_items
    )


def load(path: str | os.PathLike[str]) -> Interactions:
    """Read a file of (user, item[, rating]) interactions.

    A ``.csv`` or ``.tsv`` file has a header row naming its columns; a
    ``.parquet`` file (read with pyarrow) has named columns. Columns ``user`` and
    ``item`` (any letter case) hold integer ids, which are renumbered
    ``0 .. n - 1`` in increasing order; an optional ``rating`` column holds
    numbers; other columns are ignored. Repeated (user, item) pairs are kept.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its suffix gives its format.

    Returns
    -------
    Interactions
        With ``n_users`` and ``n_items`` the numbers of distinct ids, and
        ``ratings`` None when the file has no rating column.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the suffix is not ``.csv``, ``.tsv`` or ``.parquet``, or the content is
        malformed: no interactions, no ``user`` or ``item`` column, an id that is
        not an integer, a rating that is not a finite number. The message names
        the file and, for CSV, the line.
    ImportError
        If a Parquet file is read without pyarrow installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        msg = f"{path}: unknown file type {suffix!r}; expected one of {_SUFFIXES}"
        raise ValueError(msg)
    if not path.is_file():
        msg = f"{path}: {'not a file' if path.exists() else 'no such file'}"
        raise FileNotFoundError(msg)
    if suffix == ".parquet":
        raw_users, raw_items, ratings = _read_parquet(path)
    else:
        try:
            raw_users, raw_items, ratings = _read_csv(path, _CSV_DELIMITERS[suffix])
        except UnicodeDecodeError as error:
            msg = f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
            raise ValueError(msg) from error
    user_ids, users = np.unique(raw_users, return_inverse=True)
    item_ids, items = np.unique(raw_items, return_inverse=True)
    return Interactions(
        users.astype(np.int64),
        items.astype(np.int64),
        ratings,
        len(user_ids),
        len(item_ids),
    )


_Columns = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[np.float32] | None]


def _find_columns(
    path: Path, names: list[str], where: str
) -> tuple[int, int, int | None]:
    """Positions of the user, item and (optional) rating columns among ``names``."""
    folded = [name.strip().lower() for name in names]

    def position(wanted: str) -> int | None:
        found = [i for i, name in enumerate(folded) if name == wanted]
        if len(found) > 1:
            msg = f"{path}{where}: more than one {wanted!r} column in {names}"
            raise ValueError(msg)
        return found[0] if found else None

    def required(wanted: str) -> int:
        found = position(wanted)
        if found is None:
            msg = f"{path}{where}: no {wanted!r} column; the columns are {names}"
            raise ValueError(msg)
        return found

    return required("user"), required("item"), position("rating")


def _read_csv(path: Path, delimiter: str) -> _Columns:
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    # utf-8-sig: spreadsheets often start the file with a byte-order mark
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            msg = f"{path}: empty file; expected a header row naming 'user' and 'item'"
            raise ValueError(msg)
        user_at, item_at, rating_at = _find_columns(path, header, ", line 1")
        needed = max(user_at, item_at, -1 if rating_at is None else rating_at) + 1
        try:
            for row in reader:
                if not row:  # a blank line
                    continue
                where = f"{path}, line {reader.line_num}"
                if len(row) < needed:
                    msg = f"{where}: {len(row)} fields, expected at least {needed}"
                    raise ValueError(msg)
                users.append(_parse_id(row[user_at], "user", where))
                items.append(_parse_id(row[item_at], "item", where))
                if rating_at is not None:
                    ratings.append(_parse_rating(row[rating_at], where))
        except csv.Error as error:  # a field past csv's size limit, a stray NUL
            msg = f"{path}, line {reader.line_num}: not valid CSV: {error}"
            raise ValueError(msg) from None
    if not users:
        msg = f"{path}: no interactions, only a header row"
        raise ValueError(msg)
    return (
        np.array(users, dtype=np.int64),
        np.array(items, dtype=np.int64),
        None if rating_at is None else np.array(ratings, dtype=np.float32),
    )


def _parse_id(text: str, column: str, where: str) -> int:
    if not _INTEGER.fullmatch(text):
        msg = f"{where}: {column} id {text!r} is not an integer"
        raise ValueError(msg)
    value = int(text)
    if not _INT64.min <= value <= _INT64.max:
        msg = f"{where}: {column} id {text!r} does not fit in int64"
        raise ValueError(msg)
    return value


def _parse_rating(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"{where}: rating {text!r} is not a number"
        raise ValueError(msg) from None
    if not abs(value) <= _FLOAT32_MAX:  # also true of NaN
        msg = f"{where}: rating {text!r} is not a finite float32 number"
        raise ValueError(msg)
    return value


def _read_parquet(path: Path) -> _Columns:
    try:
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError as error:
        msg = f"reading {path} needs pyarrow: pip install pyarrow"
        raise ImportError(msg) from error
    pyarrow = importlib.import_module("pyarrow")
    try:
        names = list(parquet.read_schema(path).names)
        positions = _find_columns(path, names, "")
        wanted = [names[i] for i in positions if i is not None]
        table = parquet.read_table(path, columns=wanted)
    # pyarrow raises OSError, not its own ArrowException, for some damaged files
    except (pyarrow.ArrowException, OSError) as error:
        msg = f"{path}: not a readable Parquet file ({str(error).strip()})"
        raise ValueError(msg) from error
    if table.num_rows == 0:
        msg = f"{path}: no interactions, the table has no rows"
        raise ValueError(msg)

    def column(name: str, *, integer: bool) -> npt.NDArray[Any]:
        values = table.column(name)
        kind = values.type
        if not (
            pyarrow.types.is_integer(kind)
            or (not integer and pyarrow.types.is_floating(kind))
        ):
            expected = "integers" if integer else "numbers"
            msg = f"{path}: column {name!r} has type {kind}, expected {expected}"
            raise ValueError(msg)
        if values.null_count:
            nulls = values.is_null().to_numpy(zero_copy_only=False)
            msg = f"{path}, row {np.argmax(nulls) + 1}: column {name!r} is null"
            raise ValueError(msg)
        return np.asarray(values.to_numpy())

    users = column(wanted[0], integer=True)
    items = column(wanted[1], integer=True)
    if positions[2] is None:
        return users, items, None
    ratings = column(wanted[2], integer=False).astype(np.float64)
    bad = np.flatnonzero(~(np.abs(ratings) <= _FLOAT32_MAX))  # NaN included
    if bad.size:
        msg = (
            f"{path}, row {bad[0] + 1}: rating {ratings[bad[0]]} is not a finite "
            "float32 number"
        )
        raise ValueError(msg)
    return users, items, ratings.astype(np.float32)
