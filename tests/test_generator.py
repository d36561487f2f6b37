"""The synthetic applicant generator: determinism, published statistics, schema ranges."""

import numpy as np
import pandas as pd
import pytest

from core.features import FEATURE_NAMES, FEATURES
from models import generator


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generator.generate(120_000, seed=11)


def test_same_seed_same_frame() -> None:
    pd.testing.assert_frame_equal(generator.generate(3000, 5), generator.generate(3000, 5))
    assert not generator.generate(3000, 6).equals(generator.generate(3000, 5))


@pytest.mark.parametrize(
    ("column", "median", "rel_tol"),
    [
        ("RAW_EXT_SOURCE_2", 0.566, 0.02),
        ("RAW_EXT_SOURCE_3", 0.535, 0.02),
        ("RAW_AMT_ANNUITY", 24903, 0.03),
        ("RAW_AMT_CREDIT", 513531, 0.03),
        ("RAW_AMT_GOODS_PRICE", 450000, 0.03),
        ("RAW_DAYS_BIRTH", -15750, 0.02),
    ],
)
def test_medians_follow_home_credit(sample: pd.DataFrame, column: str, median: float, rel_tol: float) -> None:
    assert sample[column].median() == pytest.approx(median, rel=rel_tol)


@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        ("RAW_EXT_SOURCE_2", 0.0, 0.855),
        ("RAW_EXT_SOURCE_3", 0.0, 0.896),
        ("RAW_AMT_ANNUITY", 1615, 258025),
        ("RAW_AMT_CREDIT", 45000, 4050000),
        ("RAW_DAYS_BIRTH", -25229, -7489),
    ],
)
def test_base_columns_within_published_ranges(sample: pd.DataFrame, column: str, low: float, high: float) -> None:
    assert sample[column].min() >= low
    assert sample[column].max() <= high


def test_default_rate_and_missingness(sample: pd.DataFrame) -> None:
    assert sample["TARGET"].mean() == pytest.approx(generator.DEFAULT_RATE, abs=0.004)
    assert sample["RAW_EXT_SOURCE_3"].isna().mean() == pytest.approx(0.20, abs=0.01)
    assert sample["TRUE_PD"].between(0, 1).all()


def test_features_inside_schema_ranges(sample: pd.DataFrame) -> None:
    for feature in FEATURES:
        values = sample[feature.name].to_numpy()
        assert not np.isnan(values).any(), feature.name
        inside = np.array([feature.contains(v) for v in values[:20000]])
        assert inside.all(), f"{feature.name} leaves {feature.range_text}"
        if feature.dtype == "int":
            assert np.all(values == np.round(values)), feature.name


def test_external_scores_carry_most_signal(sample: pd.DataFrame) -> None:
    corr = sample[list(FEATURE_NAMES)].corrwith(sample["TRUE_PD"]).abs()
    assert corr.idxmax() in {"EXT_SOURCES_MEAN", "EXT_SOURCES_WEIGHTED"}


def test_intercept_reproduces_default_rate() -> None:
    assert generator.calibrate_intercept(n=100_000) == pytest.approx(generator.TRUE_INTERCEPT, abs=0.03)
