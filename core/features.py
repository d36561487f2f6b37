"""The ten model features, defined once.

Schemas, the data generator, training, drift monitoring, the dashboard and the load test
all read this module; nothing else lists feature names or ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Feature:
    """One model input: its name, type, unit, valid range and meaning."""

    name: str
    dtype: Literal["float", "int"]
    unit: str
    low: float
    high: float
    description: str
    reason: str
    """Adverse-action text used when this feature raises the default risk."""
    direction: Literal[-1, 0, 1] = 0
    """How credit policy expects the risk to move as the value grows: +1 up, -1 down, 0 no expectation
    (LightGBM's monotone constraint at training; the export sweeps it)."""
    low_inclusive: bool = True
    high_inclusive: bool = True
    example: float = 0.0

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the valid range."""
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    @property
    def range_text(self) -> str:
        """The range in interval notation, e.g. ``[0, 1]`` or ``(0, 1000000]``."""
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"


FEATURES: tuple[Feature, ...] = (
    Feature(
        "EXT_SOURCES_MEAN", "float", "score", 0.0, 1.0,
        "Mean of the available external credit-bureau scores",
        "Low average external credit score", direction=-1, example=0.524,
    ),
    Feature(
        "CREDIT_TERM", "float", "ratio", 0.0, 1.0,
        "Annuity divided by credit amount (inverse of the loan term)",
        "Repayment schedule relative to credit amount", example=0.05,
    ),
    Feature(
        "EXT_SOURCE_3", "float", "score", 0.0, 1.0,
        "External credit-bureau score 3 (median-imputed when missing)",
        "Low external credit score (source 3)", direction=-1, example=0.535,
    ),
    Feature(
        "GOODS_PRICE_CREDIT_PERCENT", "float", "ratio", 0.0, 1.5,
        "Price of the financed goods divided by the credit amount",
        "Credit amount high relative to the price of the goods", direction=-1, example=0.9,
    ),
    Feature(
        "INSTAL_AMT_PAYMENT_sum", "float", "currency", 0.0, 1e8,
        "Sum of installment payments made on previous credits",
        "Limited history of installment payments", direction=-1, example=318619.5,
    ),
    Feature(
        "AMT_ANNUITY", "float", "currency", 0.0, 1e6,
        "Loan annuity (periodic payment amount)",
        "High periodic payment amount", low_inclusive=False, direction=1, example=24903.0,
    ),
    Feature(
        "POS_CNT_INSTALMENT_FUTURE_mean", "float", "count", 0.0, 200.0,
        "Mean number of installments left to pay on point-of-sale credits",
        "Many installments outstanding on existing credits", direction=1, example=6.95,
    ),
    Feature(
        "DAYS_BIRTH", "int", "days", -30000, 0,
        "Client age in days, counted back from the application (negative)",
        "Age of applicant", high_inclusive=False, direction=1, example=-15750,
    ),
    Feature(
        "EXT_SOURCES_WEIGHTED", "float", "score", 0.0, 3.0,
        "Weighted sum of the three external scores (weights 0.8, 1.2, 1.0)",
        "Low weighted external credit scores", direction=-1, example=1.5,
    ),
    Feature(
        "EXT_SOURCE_2", "float", "score", 0.0, 1.0,
        "External credit-bureau score 2",
        "Low external credit score (source 2)", direction=-1, example=0.566,
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

AGE_FEATURE = "DAYS_BIRTH"
ELDERLY_AGE_YEARS = 62
"""Regulation B (12 CFR 1002.6(b)(2)): an empirically derived system may use age only if an applicant aged 62
or older is never assigned a negative factor for it; the age feature is never cited to such an applicant."""


def age_years(days_birth: np.ndarray) -> np.ndarray:
    """Age at application in years (``DAYS_BIRTH`` counts days back, negative)."""
    return -np.asarray(days_birth, dtype=np.float64) / 365.25


def is_elderly(days_birth: np.ndarray) -> np.ndarray:
    """Aged ``ELDERLY_AGE_YEARS`` or older at application."""
    return age_years(days_birth) >= ELDERLY_AGE_YEARS


AGE_ATTRIBUTE = "age_band"
"""The attribute fair-lending figures group every decision by (from the age feature, never posted)."""
ELDERLY_BAND = f"{ELDERLY_AGE_YEARS} and over"
AGE_BANDS = ((25, "under 25"), (40, "25-39"), (ELDERLY_AGE_YEARS, f"40-{ELDERLY_AGE_YEARS - 1}"),
             (math.inf, ELDERLY_BAND))
"""(upper bound in years, exclusive; label): ``age_bands`` here, ``prediction_log.postgres.fairness_days`` in SQL."""


def age_bands(days_birth: np.ndarray) -> np.ndarray:
    """The age band of each applicant."""
    edges = np.array([b for b, _ in AGE_BANDS[:-1]])
    return np.array([label for _, label in AGE_BANDS], dtype=object)[np.searchsorted(edges, age_years(days_birth),
                                                                                    side="right")]


N_FEATURES: int = len(FEATURES)

EXAMPLE_APPLICANT: dict[str, float] = {
    f.name: (int(f.example) if f.dtype == "int" else f.example) for f in FEATURES
}
