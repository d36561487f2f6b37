"""A ``serve deploy`` of a bad user_config must not take a replica down: validate, or refuse and keep."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

logger = logging.getLogger("ray.serve")
C = TypeVar("C", bound=BaseModel)


def validated_or_kept(config_type: type[C], user_config: dict[str, Any] | None, in_force: C | None,
                      who: str) -> C | None:
    """The new configuration, or None when it is invalid and ``in_force`` stays (logged, naming the problem).
    With nothing in force yet (the replica's start) an invalid one raises: Serve reports the failed start."""
    try:
        return config_type.model_validate(user_config or {})
    except ValidationError as exc:
        if in_force is None:
            raise
        logger.error("%s: change refused, the configuration in force stays: %s", who, exc)
        return None
