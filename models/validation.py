"""The independent validation a model card must record before the model may be promoted (SR 11-7: effective
challenge by someone other than its developer, with its intended use and limitations written down).

A validator adds to ``model_card.json``::

    "validation": {"validator": "A. Risk", "date": "2026-12-01", "intended_use": "...",
                   "limitations": "...", "findings": "..."}

The card's ``trained_by`` (written by ``models.train``) names the developer; the validator must be someone else.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Validation(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    validator: str = Field(min_length=2, max_length=200, description="Who validated the model (not its trainer)")
    date: date
    intended_use: str = Field(min_length=10, max_length=4000)
    limitations: str = Field(min_length=10, max_length=4000)
    findings: str = Field(min_length=10, max_length=4000)


def validation_problem(card: dict[str, Any]) -> str | None:
    """Why the card's validation does not allow promotion (naming the field), or None when it does."""
    block = card.get("validation")
    if block is None:
        return "validation: the card records no validation block (validator, date, intended_use, limitations, " \
               "findings)"
    try:
        validation = Validation.model_validate(block)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in ("validation", *first["loc"]))
        return f"{field}: {first['msg']}"
    trainer = card.get("trained_by")
    if not isinstance(trainer, str) or not trainer.strip():
        return "trained_by: the card does not say who trained the model, so the validation cannot be shown to be " \
               "independent"
    if trainer.strip().casefold() == validation.validator.casefold():
        return f"validation.validator: {validation.validator!r} trained the model; a validation must be independent"
    return None
