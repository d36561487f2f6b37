"""Reason tables equal LightGBM's own TreeSHAP (``pred_contrib``) to 1e-9 per contribution: on the served model's
reference applicants, generated applicants, rows exactly on every split threshold (and the next float above), and
on small models with other missing-value rules; models the tables cannot hold fall back; the loader refuses a model
whose tables differ."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from core.artifacts import resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import reference_applicants
from models.generator import generate
from models.loader import ModelRefused, load_model
from models.reasons import EXACT_TOLERANCE, ReasonCoder
from models.tree_tables import TreeTables, UnsupportedModel

MODEL_DIR = resolve_model_dir(None)


@pytest.fixture(scope="module")
def coder() -> ReasonCoder:
    return ReasonCoder(MODEL_DIR)


def _assert_exact(booster: lgb.Booster, tables: TreeTables, rows: np.ndarray) -> None:
    expected = booster.predict(rows, pred_contrib=True)
    got = tables.contributions(rows)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= EXACT_TOLERANCE
    assert np.abs(got.sum(axis=1) - booster.predict(rows, raw_score=True)).max() <= EXACT_TOLERANCE


def test_the_served_model_is_tabulated_and_exact_on_the_reference_applicants(coder: ReasonCoder) -> None:
    assert coder.tables is not None and coder.fallback is None
    rows = reference_applicants().to_numpy(dtype=np.float32).astype(np.float64)
    _assert_exact(coder.booster, coder.tables, rows)


def test_exact_on_rows_sitting_on_every_split_threshold(coder: ReasonCoder) -> None:
    """LightGBM sends x <= threshold left: each split's threshold itself and the next double up, in one row."""
    assert coder.tables is not None
    base = reference_applicants().to_numpy(dtype=np.float64)[:1]
    rows = []
    for tree in coder.booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                for value in (node["threshold"], np.nextafter(node["threshold"], np.inf)):
                    row = base.copy()
                    row[0, node["split_feature"]] = value
                    rows.append(row)
                stack += [node["left_child"], node["right_child"]]
    assert len(rows) > 2 * 3000
    _assert_exact(coder.booster, coder.tables, np.concatenate(rows))


@pytest.mark.slow
def test_exact_on_100_000_generated_applicants(coder: ReasonCoder) -> None:
    assert coder.tables is not None
    rows = generate(100_000, seed=20261205)[list(FEATURE_NAMES)].to_numpy(dtype=np.float32).astype(np.float64)
    _assert_exact(coder.booster, coder.tables, rows)


def _small_model(params: dict[str, object], rows: int = 3000, seed: int = 0) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) + rng.normal(size=rows) > 0)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "min_data_in_leaf": 5,
                         **params}, lgb.Dataset(x, y.astype(int)), num_boost_round=40)
    return booster, x


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}],
                         ids=["missing-nan", "zero-as-missing", "missing-none"])
def test_exact_with_missing_values_under_each_missing_rule(params: dict[str, object]) -> None:
    booster, x = _small_model(params)
    _assert_exact(booster, TreeTables(booster), x)


def test_models_the_tables_cannot_hold_fall_back_to_pred_contrib(tmp_path) -> None:   # type: ignore[no-untyped-def]
    deep, x = _small_model({"num_leaves": 64, "max_depth": 8})
    with pytest.raises(UnsupportedModel, match="splits"):
        TreeTables(deep)
    deep.save_model(str(tmp_path / "model.txt"))
    fallback = ReasonCoder(tmp_path)
    assert fallback.tables is None and "splits" in (fallback.fallback or "")
    rows = np.nan_to_num(x[:50]).astype(np.float32).astype(np.float64)
    assert np.abs(fallback.contributions(rows) - deep.predict(rows, pred_contrib=True)).max() == 0


def test_exact_on_categorical_splits_with_missing_negative_fractional_and_unseen_levels() -> None:
    """A category goes left when its level index is in the split's set; NaN, negative values and indices beyond
    every level go right, a fraction is truncated (LightGBM's ``CategoricalDecision``)."""
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 12, size=(4000, 2)).astype(np.float64)
    numbers = rng.normal(size=(4000, 2))
    x = np.column_stack([levels, numbers])
    y = (np.isin(x[:, 0], [1, 4, 7, 9]) ^ (x[:, 1] % 3 == 0) ^ (x[:, 2] > 0.3) ^ (rng.random(4000) < 0.1))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8, "max_depth": 3, "min_data_in_leaf": 5,
                         "min_data_per_group": 5, "cat_smooth": 1, "max_cat_to_onehot": 2},
                        lgb.Dataset(x, y.astype(int), categorical_feature=[0, 1]), num_boost_round=40)
    assert "==" in str(booster.dump_model())   # categorical splits, not only numerical ones
    odd = x[:800].copy()
    odd[0::4, 0], odd[1::4, 0], odd[2::4, 1], odd[3::4, 1] = np.nan, -1.0, 12.0, 40.0
    odd[::5, 0] += 0.5
    _assert_exact(booster, TreeTables(booster), np.concatenate([x, odd]))


def test_the_loader_refuses_a_model_whose_tables_differ_from_treeshap(monkeypatch: pytest.MonkeyPatch) -> None:
    exact = TreeTables.contributions
    monkeypatch.setattr(TreeTables, "contributions", lambda self, rows: exact(self, rows) + 1e-7)
    with pytest.raises(ModelRefused, match="reason tables"):
        load_model(None)
