"""Exact path-dependent TreeSHAP of a LightGBM ensemble of shallow trees, read from tables built at load time.

LightGBM's ``pred_contrib`` walks every tree with the TreeSHAP recursion for every row. The recursion looks
at a row only to decide which way it goes at each split node, so a tree's contributions are a function of
the tree's split directions: for a tree of ``k`` split nodes, a table of ``2**k`` rows (one per pattern of
directions) holds them all. Each table row is the Shapley value of the path-dependent game
(Lundberg et al., 2020): a leaf of value ``v`` on a path whose distinct features ``u`` each have a
cover fraction ``z_u`` (LightGBM's data counts down the path) and an indicator ``o_u`` (the row satisfies
every split on ``u`` along the path) adds

    v · (o_u − z_u) · Σ_{S ⊆ P∖{u}} |S|!(m−|S|−1)!/m! · Π_{s∈S} o_s · Π_{s∉S, s≠u} z_s

to feature ``u`` (``m`` distinct features on the path), and ``v · Π z`` to the base value.

A categorical split's direction is membership of the row's level index in the split's set (LightGBM's
``Tree::CategoricalDecision``: the value truncated toward zero; NaN and negative values go right), so it tabulates
the same way.

Reading a block is then vectorised: one comparison (or set lookup) per split node and row, one table index per tree and
row, and a sparse one-hot product that sums the indexed table rows. The loader checks the tables against
``pred_contrib`` on the reference applicants and refuses a model where they differ.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

MAX_SPLITS_PER_TREE = 10
"""Largest tree (split nodes) tabulated: its table has ``2**k`` rows; bigger trees fall back to ``pred_contrib``."""
ZERO_THRESHOLD = 1e-35
"""LightGBM's ``kZeroThreshold``: with missing type ``Zero``, |x| at or below it is missing."""
ROWS_PER_CHUNK = 256
"""Rows indexed at once: the ``(splits, rows)`` temporaries stay in cache (larger chunks are slower per row)."""


class UnsupportedModel(ValueError):
    """A model these tables cannot represent exactly (linear trees, deep trees, multiclass)."""


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float
    default_left: bool
    missing: str   # "None", "Zero" or "NaN", as LightGBM's dump names it
    categories: frozenset[int] | None = None
    """A categorical split: the level indices that go left."""


@dataclass(frozen=True)
class _Leaf:
    value: float
    path: list[tuple[int, bool, float]]
    """Per split on the way: (split's position in the tree, went left, count(child) / count(parent))."""


def _walk(tree: dict[str, Any]) -> tuple[list[_Split], list[_Leaf]]:
    """The split nodes of one dumped tree (in visit order) and its leaves with their paths."""
    splits: list[_Split] = []
    leaves: list[_Leaf] = []

    def count(node: dict[str, Any]) -> float:   # LightGBM's data_count: what TreeSHAP weighs paths by
        return float(node["internal_count"] if "split_index" in node else node["leaf_count"])

    def visit(node: dict[str, Any], path: list[tuple[int, bool, float]]) -> None:
        if "split_index" not in node:
            leaves.append(_Leaf(float(node["leaf_value"]), path))
            return
        kind = node.get("decision_type")
        if kind not in ("<=", "=="):
            raise UnsupportedModel(f"split of type {kind!r} (only numerical '<=' and categorical '==' splits)")
        position = len(splits)
        if kind == "==":
            categories = frozenset(int(c) for c in str(node["threshold"]).split("||"))
            splits.append(_Split(int(node["split_feature"]), -np.inf, False, "None", categories))
        else:
            splits.append(_Split(int(node["split_feature"]), float(node["threshold"]), bool(node["default_left"]),
                                 str(node["missing_type"])))
        parent = count(node)
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            visit(child, [*path, (position, left, count(child) / parent)])

    visit(tree["tree_structure"], [])
    return splits, leaves


def _tree_table(splits: list[_Split], leaves: list[_Leaf], n_features: int) -> np.ndarray:
    """``(2**k, n_features + 1)``: the tree's contributions and base value for each pattern of directions
    (bit ``j`` of the row index set = the row goes left at split ``j``)."""
    k = len(splits)
    patterns = np.arange(1 << k)
    goes_left = [(patterns >> j) & 1 == 1 for j in range(k)]
    table = np.zeros((1 << k, n_features + 1))
    for leaf in leaves:
        by_feature: dict[int, tuple[np.ndarray, float]] = {}
        for position, left, fraction in leaf.path:
            feature = splits[position].feature
            follows = goes_left[position] if left else ~goes_left[position]
            one, zero = by_feature.get(feature, (np.ones(1 << k, dtype=bool), 1.0))
            by_feature[feature] = (one & follows, zero * fraction)
        features = list(by_feature)
        m = len(features)
        table[:, n_features] += leaf.value * math.prod(z for _, z in by_feature.values())
        for u in features:
            one_u, zero_u = by_feature[u]
            others = [f for f in features if f != u]
            total = np.zeros(1 << k)
            for size in range(len(others) + 1):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                for chosen in itertools.combinations(others, size):
                    term = np.full(1 << k, weight)
                    for f in others:
                        one_f, zero_f = by_feature[f]
                        term = term * one_f if f in chosen else term * zero_f
                    total += term
            table[:, u] += leaf.value * (one_u - zero_u) * total
    return table


class TreeTables:
    """The contributions of a LightGBM binary model as ``pred_contrib`` gives them, from one table per tree."""

    def __init__(self, booster: lgb.Booster) -> None:
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise UnsupportedModel("more than one tree per iteration (multiclass)")
        if dump.get("average_output"):
            raise UnsupportedModel("averaged output (random forest)")
        if "is_linear=1" in booster.model_to_string():
            raise UnsupportedModel("linear trees")
        self.n_features = int(dump["max_feature_idx"]) + 1
        trees = [_walk(tree) for tree in dump["tree_info"]]
        width = max((len(splits) for splits, _ in trees), default=0)
        if width > MAX_SPLITS_PER_TREE:
            raise UnsupportedModel(f"a tree with {width} splits (at most {MAX_SPLITS_PER_TREE} are tabulated)")
        self.n_trees, self._width = len(trees), width
        # Split j of every tree side by side (split-major), so a block's decisions are (width, trees, rows) and the
        # table index of a tree is its bits OR-ed in place. A tree with fewer splits is padded with splits that never
        # go left (threshold -inf): they add no bit.
        shape = (width, self.n_trees)
        feature, threshold = np.zeros(shape, dtype=np.intp), np.full(shape, -np.inf)
        default_left, missing_zero, missing_nan = (np.zeros(shape, dtype=bool) for _ in range(3))
        tables, bases, base = [], [], 0
        categorical: list[tuple[int, frozenset[int]]] = []   # (split-major position, levels going left)
        for t, (splits, leaves) in enumerate(trees):
            for j, split in enumerate(splits):
                feature[j, t], threshold[j, t], default_left[j, t] = split.feature, split.threshold, split.default_left
                missing_zero[j, t], missing_nan[j, t] = split.missing == "Zero", split.missing == "NaN"
                if split.categories is not None:
                    categorical.append((j * self.n_trees + t, split.categories))
            tables.append(_tree_table(splits, leaves, self.n_features))
            bases.append(base)
            base += 1 << len(splits)
        column = (-1, 1)   # per split, broadcast over the rows of a block
        self._feature = feature.ravel()
        self._threshold, self._default_left = threshold.reshape(column), default_left.reshape(column)
        self._missing_zero, self._missing_nan = missing_zero.reshape(column), missing_nan.reshape(column)
        self._tree_base = np.asarray(bases, dtype=np.int64)
        self._table = np.concatenate(tables) if tables else np.zeros((0, self.n_features + 1))
        self._cat_position = np.array([p for p, _ in categorical], dtype=np.intp)
        levels = 1 + max((max(c, default=0) for _, c in categorical), default=0)
        self._cat_left = np.zeros((len(categorical), levels + 1), dtype=bool)   # last column: not a level
        for i, (_, going_left) in enumerate(categorical):
            self._cat_left[i, sorted(going_left)] = True

    def _goes_left(self, rows: np.ndarray) -> np.ndarray:
        """``(splits, n)``: LightGBM's decision at every split node (``Tree::NumericalDecision``,
        ``Tree::CategoricalDecision``)."""
        x = np.ascontiguousarray(rows.T)[self._feature]
        left = x <= self._threshold
        nan = np.isnan(x)
        has_nan = bool(nan.any())
        if has_nan:   # NaN counts as 0 unless the split's missing type is NaN
            left |= nan & ~self._missing_nan & (self._threshold >= 0.0)
        if has_nan or self._missing_zero.any():
            missing = (self._missing_zero & (nan | (np.abs(x) <= ZERO_THRESHOLD))) | (self._missing_nan & nan)
            left = np.where(missing, self._default_left, left)
        if len(self._cat_position):   # truncated toward zero; NaN, negative or beyond every level: right
            x_cat = x[self._cat_position]
            outside = self._cat_left.shape[1] - 1
            index = np.where(np.isfinite(x_cat) & (x_cat > -1) & (x_cat < outside), x_cat, outside).astype(np.intp)
            left[self._cat_position] = np.take_along_axis(self._cat_left, index, axis=1)
        return left

    def _table_rows_of(self, rows: np.ndarray) -> np.ndarray:
        """``(n, trees)``: the row of the concatenated tables each tree gives each row."""
        left = self._goes_left(rows).reshape(self._width, self.n_trees, len(rows))
        index = np.zeros((self.n_trees, len(rows)), dtype=np.uint8 if self._width <= 8 else np.uint16)
        for j in range(self._width):
            index |= left[j].astype(index.dtype) << j
        return index.T.astype(np.int64) + self._tree_base

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """``(n, n_features + 1)`` for float64 rows: per-feature contributions then the base value."""
        rows = np.asarray(rows, dtype=np.float64)
        out = np.empty((len(rows), self.n_features + 1))
        for start in range(0, len(rows), ROWS_PER_CHUNK):
            chunk = rows[start:start + ROWS_PER_CHUNK]
            index = self._table_rows_of(chunk)
            picks = sp.csr_matrix((np.ones(index.size), index.ravel(), np.arange(0, index.size + 1, self.n_trees)),
                                  shape=(len(chunk), len(self._table)))
            out[start:start + len(chunk)] = picks @ self._table
        return out
