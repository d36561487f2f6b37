"""A shadow challenger's window as counts, whichever store counted it: per (champion, challenger) version pair,
the confusion of their decisions, the correlation of their scores, a sample of score pairs, the labelled
decisions per probability bin of each model (``labelled_bins``), the labelled loans per pair of bins
(``models.paired``: the paired tests) and every shadowed decision per bin of each model (estimated performance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.paired import PairedCells
from prediction_log.labelled_bins import LabelledBins

SCATTER_POINTS = 500
"""Score pairs a comparison carries at most (a sample of the pair's decisions)."""


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
