"""Public routes about the model: health (for probes) and the active model card (no personal data)."""

from __future__ import annotations

from fastapi import APIRouter

from deployments.http.answers import ModelCard
from deployments.http.deps import BackendDep, unavailable
from deployments.http.schemas import Health

router = APIRouter(tags=["model"])


@router.get("/health", response_model=Health, summary="Model loaded, version and threshold, log state; 503 until ready")
async def health(b: BackendDep) -> Health:
    try:
        card = await b.model_card()
    except Exception as exc:
        raise unavailable("scorer") from exc
    log = b.log_state()
    return Health(status="ok" if log == "ok" else "degraded", model_loaded=True, model_version=card["version"],
                  threshold=card["threshold_in_force"], log=log,
                  change_refused=card.get("change_refused"))


@router.get("/model", response_model=ModelCard, summary="The active model card (public: no personal data)")
async def model(b: BackendDep) -> ModelCard:
    try:
        return await b.model_card()
    except Exception as exc:
        raise unavailable("scorer") from exc
