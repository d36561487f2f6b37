"""What a scorer answers for a block of rows: the model side's type, shared by the scorer, the challenger and
the decision step (not the HTTP package's: the model side must not depend on the web side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Scored:
    """Probabilities for one block of rows, with the model and threshold that produced them."""

    probabilities: np.ndarray
    model_version: str
    threshold: float
    reasons: pa.StringArray | None = field(default=None, compare=False, repr=False)
    """Per row: the JSON text of a denied row's explanation (principal reasons), null for an approved one; None when
    the model has no LightGBM file or the scorer was told not to compute them."""
    shadow: Any = field(default=None, compare=False, repr=False)
    """The shadow challenger's scoring of the same rows (an ``asyncio.Task`` of ``Scored``) when one runs; for
    ``record``, which completes the records with it off the response path."""
