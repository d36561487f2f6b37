"""The time window every report command takes: ``--days`` back from ``--until`` (or now), or ``--since``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta


def utc(text: str) -> datetime:
    """An ISO 8601 time; naive means UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_window_arguments(parser: argparse.ArgumentParser, days: float) -> None:
    parser.add_argument("--days", type=float, default=days, help="decisions of the last N days (without --since)")
    parser.add_argument("--since", type=utc, help="decisions made from, ISO 8601 (inclusive; naive = UTC)")
    parser.add_argument("--until", type=utc, help="decisions made before, ISO 8601 (exclusive; default now)")


def window_since(args: argparse.Namespace) -> datetime:
    """``--since``, or ``--days`` before ``--until`` (or now)."""
    return args.since or (args.until or datetime.now(UTC)) - timedelta(days=args.days)
