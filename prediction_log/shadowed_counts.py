"""A shadow challenger's window as counts, whichever store counted it: per (champion, challenger) version pair,
the confusion of their decisions, the correlation of their scores, a sample of score pairs, the labelled
decisions per probability bin of each model (``labelled_bins``), the labelled loans per pair of bins
(``models.paired``: the paired tests) and every shadowed decision per bin of each model (estimated performance)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prediction_log.labelled_bins import LabelledBins

SCATTER_POINTS = 500
"""Score pairs a comparison carries at most (a sample of the pair's decisions)."""


@dataclass(frozen=True)
class PairedCells:
    """Labelled loans scored by both models: parallel arrays, one entry per cell (``models.paired`` reads them)."""

    champion_score: np.ndarray     # any ordered number: a probability, or its bin
    challenger_score: np.ndarray
    champion_denied: np.ndarray    # bool
    challenger_denied: np.ndarray  # bool
    defaulted: np.ndarray          # 0/1
    count: np.ndarray              # int64

    @property
    def loans(self) -> int:
        return int(self.count.sum())

    def merged(self) -> PairedCells:
        """One cell per distinct key, counts added (cells made per chunk or per day, summed over a window)."""
        key = np.stack([self.champion_score.astype(np.float64), self.challenger_score.astype(np.float64),
                        self.champion_denied, self.challenger_denied, self.defaulted], axis=1)
        if not len(key):
            return self
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        return PairedCells(unique[:, 0], unique[:, 1], unique[:, 2].astype(bool), unique[:, 3].astype(bool),
                           unique[:, 4].astype(np.int8), np.bincount(inverse.ravel(), self.count).astype(np.int64))



def cells_of_rows(champion: np.ndarray, challenger: np.ndarray, champion_denied: np.ndarray,
                  challenger_denied: np.ndarray, defaulted: np.ndarray) -> PairedCells:
    """One cell per loan (exact probabilities)."""
    return PairedCells(champion, challenger, champion_denied.astype(bool), challenger_denied.astype(bool),
                       defaulted.astype(np.int8), np.ones(len(defaulted), dtype=np.int64))


@dataclass
class PairCounts:
    """One version pair's counts; ``*_bins``: ``models.performance.realized_from_bins``'s arguments."""

    champion: str
    challenger: str
    decisions: int = 0
    confusion: dict[tuple[bool, bool], int] = field(default_factory=dict)
    """(champion denied, challenger denied) → decisions."""
    correlation: float | None = None
    scatter: list[tuple[float, float]] = field(default_factory=list)
    champion_bins: LabelledBins | None = None
    """The pair's labelled decisions by the champion's probability bin and decision; the challenger's below."""
    challenger_bins: LabelledBins | None = None
    paired: PairedCells | None = None
    """The labelled loans per (champion bin, challenger bin, decisions, outcome)."""
    champion_scored: LabelledBins | None = None
    """Every decision of the pair by the champion's probability bin (``defaulted`` -1); the challenger's below."""
    challenger_scored: LabelledBins | None = None

    @property
    def labelled(self) -> int:
        return self.champion_bins.decisions if self.champion_bins else 0


@dataclass
class ShadowedCounts:
    shadowed: int
    pairs: list[PairCounts]
