"""Does the model move risk the way credit policy expects? A sweep of each feature over its range.

For every feature with a declared direction (the card's schema, ``core.schema.FeatureSpec.direction``), each
applicant of a sample is scored at ``STEPS`` values spread over the feature's training range (1st to 99th percentile,
everything else held), and the probability must never move against the direction by more than
``TOLERANCE``. Training constrains LightGBM with the same directions (``monotone_constraints``); the sweep
checks the exported ONNX model, and its result goes on the model card, where the loader looks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.schema import DEFAULT_SCHEMA, ModelSchema

STEPS = 25
SAMPLE_ROWS = 500
TOLERANCE = 1e-6
"""float32 summation noise of the ONNX runtime, not a relaxation of the constraint."""


def constraints(schema: ModelSchema = DEFAULT_SCHEMA) -> list[int]:
    """LightGBM's ``monotone_constraints`` in feature order (+1, −1 or 0), from the schema's declarations."""
    return [f.direction for f in schema.features]


def sweep(predict: Callable[[np.ndarray], np.ndarray], rows: np.ndarray,
          profile: dict[str, dict[str, float]], schema: ModelSchema = DEFAULT_SCHEMA) -> dict[str, Any]:
    """Per feature with a direction: the largest move against it and whether it passes; ``passed`` overall."""
    sample = rows[:SAMPLE_ROWS]
    result: dict[str, Any] = {"rows": len(sample), "steps": STEPS, "tolerance": TOLERANCE, "features": {}}
    for j, feature in enumerate(schema.features):
        if feature.direction == 0:
            continue
        grid = np.linspace(profile[feature.name]["q01"], profile[feature.name]["q99"], STEPS)
        swept = np.repeat(sample, STEPS, axis=0)
        swept[:, j] = np.tile(grid, len(sample))
        p = predict(swept).reshape(len(sample), STEPS)
        against = float(np.max(-feature.direction * np.diff(p, axis=1), initial=0.0))
        result["features"][feature.name] = {"direction": feature.direction, "max_move_against": against,
                                            "passed": against <= TOLERANCE}
    result["passed"] = all(f["passed"] for f in result["features"].values())
    return result
