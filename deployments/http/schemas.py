"""Request and response models, generated from the feature definitions."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    field_validator,
)

from core.features import AGE_ATTRIBUTE, EXAMPLE_APPLICANT, FEATURES, Feature
from prediction_log.groups import MAX_GROUPS
from prediction_log.outcomes import MAX_OUTCOMES

MAX_BATCH_ROWS = 10_000


def _no_strings_or_containers(value: Any) -> Any:
    """Numbers only: strings, lists and objects are refused; ``true``/``false`` become 1/0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, bytes, list, dict)):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and Infinity are not accepted)")
    return value


def _field_type(feature: Feature) -> Any:
    bounds = {
        ("ge" if feature.low_inclusive else "gt"): feature.low,
        ("le" if feature.high_inclusive else "lt"): feature.high,
    }
    python_type = int if feature.dtype == "int" else float
    extra: dict[str, Any] = {} if feature.dtype == "int" else {"allow_inf_nan": False}
    field = Field(...,  # type: ignore[call-overload]  # bounds and extras by name, checked by pydantic at import description=f"{feature.description} ({feature.unit}, {feature.range_text})",
                  examples=[EXAMPLE_APPLICANT[feature.name]], **bounds, **extra)
    return Annotated[python_type, field, BeforeValidator(_no_strings_or_containers)]


Applicant = create_model(
    "Applicant",
    __config__=ConfigDict(json_schema_extra={"examples": [dict(EXAMPLE_APPLICANT)]}),
    __doc__="One loan applicant: the ten model features, all required.",
    **{f.name: _field_type(f) for f in FEATURES},
)


class Reason(BaseModel):
    feature: str
    contribution: float = Field(description="Log-odds this feature adds to the default risk (positive raises it)")
    text: str = Field(description="Adverse-action text")


class Explanation(BaseModel):
    """Reason codes: TreeSHAP contributions (they add up to the raw score) and the principal reasons."""

    base_value: float
    raw_score: float
    contributions: dict[str, float]
    reasons: list[Reason] = Field(description="Features that raise the risk, largest first")


class Decision(BaseModel):
    """A credit decision for one applicant."""

    request_id: str = Field(description="Unique id of this decision, also the log record's key")
    prediction: Literal[0, 1] = Field(description="1 = predicted default (denied)")
    probability_default: float = Field(description="Model probability of default, 6 decimals")
    credit_decision: Literal["approved", "denied"]
    model_version: str
    threshold: float = Field(description="Denied when probability_default >= threshold")
    explanation: Explanation | None = Field(None, description="Reason codes; only with ?explain=true")


class BatchDecisions(BaseModel):
    """Decisions for a batch, in request order."""

    count: int
    results: list[Decision]


class DecisionNotice(BaseModel):
    """What an adverse-action notice needs about one decision (Regulation B 12 CFR 1002.9)."""

    request_id: str
    decided_at: str = Field(description="When the decision was made (ISO 8601, UTC)")
    credit_decision: Literal["approved", "denied"]
    model_version: str
    principal_reasons: list[str] = Field(description="Denied: the specific principal reasons, most important first "
                                                     "(at most 4), in plain language; approved: none")
    reasons_on_record: bool = Field(description="False for a denial logged without reasons (before they were "
                                                "recorded for every denial, or a model without its LightGBM file)")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: decisions are being spooled, or refused")
    model_loaded: bool
    model_version: str
    threshold: float
    log: Literal["ok", "writer_unavailable", "refusing"] = Field(
        description="writer_unavailable: the log writer or its store is failing (decisions held, then spooled); "
                    "refusing: nowhere to record decisions, scoring answers 503")
    change_refused: str | None = Field(None, description="Why the last model or scorer configuration change "
                                                         "was refused (the model above kept answering)")


APPLICANT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Applicant)
APPLICANTS_ADAPTER: TypeAdapter[list[Any]] = TypeAdapter(
    Annotated[list[Applicant], Field(min_length=1, max_length=MAX_BATCH_ROWS)])


def _inline_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    schema = adapter.json_schema()
    defs = schema.pop("$defs", {})
    if "items" in schema and "$ref" in schema["items"]:
        schema["items"] = defs[schema["items"]["$ref"].split("/")[-1]]
    return schema


def request_body_doc(adapter: TypeAdapter[Any], example: Any) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for routes that validate the raw body themselves."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _inline_schema(adapter), "example": example}}}}


class Outcome(BaseModel):
    """What happened to the loan of one decision."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                            description="The decision's request_id (printable ASCII, as the server issues them: "
                                        "NUL or lone surrogates cannot be stored)")
    defaulted: Literal[0, 1] = Field(description="1 = the borrower defaulted")
    observed_at: AwareDatetime | None = Field(None, description="When the outcome was observed (default: now); "
                                                                "with a time zone")

    @field_validator("observed_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """In UTC, or a 422 (``0001-01-01T00:00:00+14:00`` is before year 1 in UTC: no store can hold it)."""
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("observed_at is outside the years 1 to 9999 in UTC") from None


OUTCOMES_ADAPTER: TypeAdapter[list[Outcome]] = TypeAdapter(
    Annotated[list[Outcome], Field(min_length=1, max_length=MAX_OUTCOMES)])


class OutcomeReceipt(BaseModel):
    """What a post of outcomes stored; a conflicting outcome refuses the whole post (409)."""

    accepted: int = Field(description="Outcomes stored now")
    unknown_request_ids: list[str] = Field(description="Not in the prediction log: not stored")
    duplicates: int = Field(description="Same outcome already stored (or repeated in this post): nothing changed")


class GroupMembership(BaseModel):
    """The group of a decided applicant under one attribute, for disparate-impact monitoring (never scored)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                            description="The decision's request_id")
    attribute: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$",
        description="e.g. 'sex', 'race_ethnicity' (self-reported or a proxy: the lender's choice); "
        f"'{AGE_ATTRIBUTE}' is derived from the features and cannot be posted",
    )
    group: str = Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")

    @field_validator("attribute")
    @classmethod
    def _not_derived(cls, value: str) -> str:
        if value == AGE_ATTRIBUTE:
            raise ValueError(f"'{AGE_ATTRIBUTE}' comes from the features; post another attribute")
        return value


GROUPS_ADAPTER: TypeAdapter[list[GroupMembership]] = TypeAdapter(
    Annotated[list[GroupMembership], Field(min_length=1, max_length=MAX_GROUPS)]
)


class GroupsReceipt(BaseModel):
    accepted: int
    unknown_request_ids: list[str]
    duplicates: int = Field(description="Already recorded for that decision and attribute: nothing changed")
