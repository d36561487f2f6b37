"""Synthetic loan applicants with a known default probability.

Marginals follow the published statistics of Home Credit's ``application_train``
(307,511 rows): EXT_SOURCE_2 median 0.566 on [0, 0.855], EXT_SOURCE_3 median 0.535 on
[0, 0.896] with ~20% missing, AMT_ANNUITY median 24,903, AMT_CREDIT median 513,531,
AMT_GOODS_PRICE median 450,000, DAYS_BIRTH median -15,750 on [-25,229, -7,489], and a
default rate of 8.07%. A latent credit-worthiness factor correlates the external scores,
age and payment history (a Gaussian copula). The true default probability is a known
function of the ten model features, so the Bayes-optimal AUC and cost are computable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from core.features import FEATURE_NAMES

DEFAULT_RATE = 0.0807
EXT_COLUMNS = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
EXT_WEIGHTS = (0.8, 1.2, 1.0)
"""Weights of EXT_SOURCE_1..3 in EXT_SOURCES_WEIGHTED (sum 3, so the feature spans 0-3)."""

# Intercept of the true logit that gives the 8.07% default rate (solved by ``calibrate_intercept``).
TRUE_INTERCEPT = -3.2699


def _beta_on(u: np.ndarray, a: float, b: float, high: float) -> np.ndarray:
    """Map uniforms through a Beta(a, b) quantile function scaled to [0, high]."""
    return high * stats.beta.ppf(u, a, b)


def _latent(rng: np.random.Generator, factor: np.ndarray, loading: float) -> np.ndarray:
    """A uniform variable whose normal score loads ``loading`` on the common factor."""
    noise = rng.standard_normal(factor.shape[0])
    return stats.norm.cdf(loading * factor + np.sqrt(1.0 - loading**2) * noise)


def raw_columns(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Base application columns modelled on ``application_train``."""
    worth = rng.standard_normal(n)  # latent credit-worthiness
    ext1 = _beta_on(_latent(rng, worth, 0.55), 3.0, 2.9, 0.962)
    ext2 = _beta_on(_latent(rng, worth, 0.60), 2.6, 1.5, 0.855)
    ext3 = _beta_on(_latent(rng, worth, 0.55), 2.4, 1.7, 0.896)
    ext1[rng.random(n) < 0.56] = np.nan
    ext3[rng.random(n) < 0.20] = np.nan

    age_u = _latent(rng, worth, 0.25)
    days_birth = np.round(-25229 + (25229 - 7489) * (1.0 - stats.beta.ppf(age_u, 1.55, 1.7)))

    credit = np.clip(np.exp(np.log(513531) + 0.62 * rng.standard_normal(n)), 45000, 4050000)
    term = np.clip(np.exp(np.log(0.0485) + 0.33 * rng.standard_normal(n)), 0.022, 0.125)
    annuity = np.clip(credit * term, 1615, 258025)
    goods_ratio = np.clip(rng.normal(0.885, 0.085, n), 0.35, 1.5)
    goods = np.round(credit * goods_ratio, -3)

    history = rng.random(n) > 0.05
    payments_log = np.log(318000) + 1.05 * rng.standard_normal(n) + 0.25 * worth
    instal_sum = np.where(history, np.clip(np.exp(payments_log), 0, 1e8), 0.0)
    pos_future = np.clip(rng.gamma(2.2, 3.4, n) - 0.4 * worth, 0, 60)

    return pd.DataFrame(
        {
            "EXT_SOURCE_1": ext1,
            "EXT_SOURCE_2": ext2,
            "EXT_SOURCE_3": ext3,
            "AMT_CREDIT": credit,
            "AMT_ANNUITY": annuity,
            "AMT_GOODS_PRICE": goods,
            "DAYS_BIRTH": days_birth,
            "INSTAL_AMT_PAYMENT_sum": instal_sum,
            "POS_CNT_INSTALMENT_FUTURE_mean": pos_future,
        }
    )


def model_features(raw: pd.DataFrame, fill: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Derive the ten model features from base columns, as the original pipeline did.

    Missing external scores are imputed with ``fill`` (default: this frame's medians, as in
    training); values are rounded to float32 so the ONNX model (float32 inputs) sees exactly
    what LightGBM was trained on.
    """
    ext = raw[list(EXT_COLUMNS)]
    ext_filled = ext.fillna(ext.median() if fill is None else pd.Series(fill))
    features = pd.DataFrame(
        {
            "EXT_SOURCES_MEAN": ext.mean(axis=1, skipna=True),
            "CREDIT_TERM": raw["AMT_ANNUITY"] / raw["AMT_CREDIT"],
            "EXT_SOURCE_3": ext_filled["EXT_SOURCE_3"],
            "GOODS_PRICE_CREDIT_PERCENT": raw["AMT_GOODS_PRICE"] / raw["AMT_CREDIT"],
            "INSTAL_AMT_PAYMENT_sum": raw["INSTAL_AMT_PAYMENT_sum"],
            "AMT_ANNUITY": raw["AMT_ANNUITY"],
            "POS_CNT_INSTALMENT_FUTURE_mean": raw["POS_CNT_INSTALMENT_FUTURE_mean"],
            "DAYS_BIRTH": raw["DAYS_BIRTH"],
            "EXT_SOURCES_WEIGHTED": (ext_filled * np.asarray(EXT_WEIGHTS)).sum(axis=1),
            "EXT_SOURCE_2": ext_filled["EXT_SOURCE_2"],
        }
    )[list(FEATURE_NAMES)]
    return features.astype(np.float32).astype(np.float64)


def true_logit(x: pd.DataFrame, intercept: float = TRUE_INTERCEPT,
               ext_effect: float | np.ndarray = 1.0) -> np.ndarray:
    """The known log-odds of default as a function of the ten model features; ``ext_effect`` scales the
    external scores' terms (1 = the world the model was trained on; below 1 = concept drift)."""
    term_bump = np.exp(-(((x["CREDIT_TERM"] - 0.045) / 0.012) ** 2))
    return (
        intercept
        - ext_effect * 3.7 * (x["EXT_SOURCES_MEAN"] - 0.5)
        - ext_effect * 0.9 * (x["EXT_SOURCE_3"] - 0.5)
        - ext_effect * 0.7 * (x["EXT_SOURCE_2"] - 0.55)
        - ext_effect * 0.35 * (x["EXT_SOURCES_WEIGHTED"] - 1.6)
        + 0.35 * term_bump
        + 1.1 * np.clip((0.9 - x["GOODS_PRICE_CREDIT_PERCENT"]) / 0.25, 0.0, 1.0)
        + 0.45 * (x["DAYS_BIRTH"] + 15750) / 5000
        - 0.12 * (np.log1p(x["INSTAL_AMT_PAYMENT_sum"]) - 12.6)
        + 0.018 * (x["POS_CNT_INSTALMENT_FUTURE_mean"] - 7)
        + 0.2 * np.log(x["AMT_ANNUITY"] / 24903)
    ).to_numpy()


def true_probability(x: pd.DataFrame, intercept: float = TRUE_INTERCEPT,
                     ext_effect: float | np.ndarray = 1.0) -> np.ndarray:
    """The known probability of default for each applicant."""
    return 1.0 / (1.0 + np.exp(-true_logit(x, intercept, ext_effect)))


def calibrate_intercept(n: int = 400_000, seed: int = 0) -> float:
    """Solve the intercept that gives the published default rate (used to set TRUE_INTERCEPT)."""
    x = model_features(raw_columns(n, np.random.default_rng(seed)))
    low, high = -8.0, 2.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if true_probability(x, mid).mean() < DEFAULT_RATE else (low, mid)
    return round((low + high) / 2, 4)


def imputation_values(n: int, seed: int) -> dict[str, float]:
    """The external-score medians of the ``generate(n, seed)`` data: what training imputed with."""
    medians = raw_columns(n, np.random.default_rng(seed))[list(EXT_COLUMNS)].median()
    return {str(k): float(v) for k, v in medians.items()}


def generate(n: int, seed: int) -> pd.DataFrame:
    """``n`` applicants: base columns, the ten features, ``TRUE_PD`` and the sampled ``TARGET``.

    The same ``(n, seed)`` always gives the same frame.
    """
    rng = np.random.default_rng(seed)
    raw = raw_columns(n, rng)
    features = model_features(raw)
    p = true_probability(features)
    target = (rng.random(n) < p).astype(np.int8)
    return pd.concat([features, raw.add_prefix("RAW_")], axis=1).assign(TRUE_PD=p, TARGET=target)
