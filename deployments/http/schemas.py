"""Request and response models; the applicant's generated from the model's schema (``core.schema``: the card's
declarations)."""

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

from core.features import AGE_ATTRIBUTE
from core.schema import FeatureSpec, ModelSchema, level_text
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


def _a_level(value: Any) -> Any:
    """A category's level as text: a JSON number names the level it spells (``2`` → ``'2'``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return level_text(value)
    return value


def _described(feature: FeatureSpec) -> str:
    detail = ", ".join(p for p in (feature.unit, feature.range_text) if p)
    return f"{feature.description} ({detail})" if feature.description else detail


def _field_type(feature: FeatureSpec) -> Any:
    """The pydantic type of one declared feature: range, levels and missing-value policy as the card says."""
    required = feature.missing == "refuse"
    default: Any = ... if required else None
    example = feature.example
    if feature.kind == "category":
        levels = tuple(feature.levels)
        if feature.unknown == "refuse":
            level_type: Any = Literal[levels]   # the card's levels, at build time
        else:
            level_type = str
        field = Field(default, description=_described(feature), examples=[example if example is not None
                                                                          else levels[0]])
        annotated: Any = Annotated[level_type, field, BeforeValidator(_a_level)]
        return annotated if required else Annotated[level_type | None, field, BeforeValidator(_a_level)]
    bounds: dict[str, float] = {}
    if math.isfinite(feature.low):
        bounds["ge" if feature.low_inclusive else "gt"] = feature.low
    if math.isfinite(feature.high):
        bounds["le" if feature.high_inclusive else "lt"] = feature.high
    python_type: Any = int if feature.kind == "integer" else float
    extra: dict[str, Any] = {} if feature.kind == "integer" else {"allow_inf_nan": False}
    field = Field(default, description=_described(feature),  # type: ignore[call-overload]  # bounds by name
                  examples=[example], **bounds, **extra)
    if not required:
        python_type = python_type | None
    return Annotated[python_type, field, BeforeValidator(_no_strings_or_containers)]


def example_applicant(schema: ModelSchema) -> dict[str, Any]:
    """An applicant every declaration accepts: the card's examples (else a level, the range's low end or 0)."""
    out: dict[str, Any] = {}
    for f in schema.features:
        if f.example is not None:
            out[f.name] = f.example
        elif f.kind == "category":
            out[f.name] = f.levels[0]
        else:
            out[f.name] = f.low if math.isfinite(f.low) and f.low_inclusive else 0
    return out


def applicant_model(schema: ModelSchema) -> type[BaseModel]:
    """One loan applicant under ``schema``: its features, as declared."""
    names = ", ".join(schema.names) if len(schema) <= 12 else f"{len(schema)} features"
    model: type[BaseModel] = create_model(
        "Applicant",
        __config__=ConfigDict(json_schema_extra={"examples": [example_applicant(schema)]}),
        __doc__=f"One loan applicant: the model's features ({names}); required unless declared otherwise.",
        **{f.name: _field_type(f) for f in schema.features},
    )
    return model


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


def applicant_adapters(model: type[BaseModel]) -> tuple[TypeAdapter[Any], TypeAdapter[list[Any]]]:
    """Validators of one applicant and of a batch of 1 to ``MAX_BATCH_ROWS``."""
    batch: Any = Annotated[list[model], Field(min_length=1, max_length=MAX_BATCH_ROWS)]  # type: ignore[valid-type]
    return TypeAdapter(model), TypeAdapter(batch)



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
