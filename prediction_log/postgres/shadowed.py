"""The shadow challenger's window in PostgreSQL as counts: ``GET /challenger`` over millions of decisions without
bringing them into Python.

Per (champion, challenger) version pair: decisions by both models' decisions (confusion), the correlation of their
probabilities (``corr``), a sample of at most ``SCATTER_POINTS`` score pairs (the decisions whose request_id hashes into
one in ``decisions // SCATTER_POINTS``), and the labelled decisions counted per probability bin of each model
(``labelled_bins``, per day: realized figures from counts). PostgreSQL scans the window (its time grows with the
window's shadowed decisions); what crosses into Python grows with bins and pairs, not rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from prediction_log.postgres.labelled import bin_sql, bins_of
from prediction_log.shadowed_counts import SCATTER_POINTS, PairCounts, PairedCells, ShadowedCounts

_SHADOWED = (
    "p.challenger_probability IS NOT NULL AND ($1::timestamptz IS NULL OR p.ts >= $1) "
    "AND ($2::timestamptz IS NULL OR p.ts < $2)"
)
_EPOCH = datetime(1970, 1, 1)
"""The day of a window's counts summed as one (what the file log's ``counted`` gives them)."""
_COLUMNS = (
    "p.model_version AS champion, p.challenger_version AS challenger, p.probability_default AS pp, "
    "p.prediction = 1 AS denied, p.challenger_probability AS cp, p.challenger_decision = 'denied' AS c_denied"
)


async def shadowed_counts(
    conn: asyncpg.Connection,
    log_table: str,
    outcomes_table: str,
    since: datetime | None,
    until: datetime | None,
    timeout_s: float,
) -> ShadowedCounts:
    """The window's shadowed decisions, counted (three scans of the window; see the module's docstring)."""
    pairs: dict[tuple[str, str], PairCounts] = {}
    for champion, challenger, denied, c_denied, whole, count, correlation in await conn.fetch(
        f"SELECT champion, challenger, denied, c_denied, GROUPING(denied, c_denied) <> 0, count(*), corr(pp, cp) "
        f"FROM (SELECT {_COLUMNS} FROM {log_table} p WHERE {_SHADOWED}) s "
        "GROUP BY GROUPING SETS ((champion, challenger, denied, c_denied), (champion, challenger))",
        since,
        until,
        timeout=timeout_s,
    ):
        pair = pairs.setdefault((champion, challenger), PairCounts(champion, challenger))
        if whole:
            pair.decisions, pair.correlation = count, correlation
        else:
            pair.confusion[(denied, c_denied)] = count
    sides: dict[tuple[str, str, bool], list[Any]] = {}
    for row in await conn.fetch(
        f"WITH l AS MATERIALIZED (SELECT {_COLUMNS}, date_trunc('day', p.ts, 'UTC') AS day, o.defaulted "
        f"FROM {log_table} p JOIN {outcomes_table} o USING (request_id) WHERE {_SHADOWED}) "
        f"SELECT true, champion, challenger, day, champion, {bin_sql('pp')}, denied, defaulted, count(*), sum(pp), "
        "sum(pp * pp), min(pp), max(pp) FROM l GROUP BY 2, 3, 4, 6, 7, 8 UNION ALL "
        f"SELECT false, champion, challenger, day, challenger, {bin_sql('cp')}, c_denied, defaulted, count(*), "
        "sum(cp), sum(cp * cp), min(cp), max(cp) FROM l GROUP BY 2, 3, 4, 6, 7, 8",
        since,
        until,
        timeout=timeout_s,
    ):
        sides.setdefault((row[1], row[2], row[0]), []).append(tuple(row[3:]))
    for (champion, challenger, is_champion), rows in sides.items():
        pair = pairs[(champion, challenger)]
        if is_champion:
            pair.champion_bins = bins_of(rows)
        else:
            pair.challenger_bins = bins_of(rows)
    await _paired_and_scored(conn, log_table, outcomes_table, since, until, timeout_s, pairs)
    for pair in pairs.values():
        pair.scatter = [
            tuple(r)
            for r in await conn.fetch(
                f"SELECT p.probability_default, p.challenger_probability FROM {log_table} p WHERE {_SHADOWED} "
                "AND p.model_version = $3 AND p.challenger_version = $4 "
                "AND abs(hashtext(p.request_id)::bigint) % $5 = 0 "
                f"LIMIT {SCATTER_POINTS}",
                since,
                until,
                pair.champion,
                pair.challenger,
                max(1, pair.decisions // SCATTER_POINTS),
                timeout=timeout_s,
            )
        ]
    return ShadowedCounts(sum(p.decisions for p in pairs.values()), [pairs[k] for k in sorted(pairs)])


async def _paired_and_scored(conn: asyncpg.Connection, log_table: str, outcomes_table: str,
                             since: datetime | None, until: datetime | None, timeout_s: float,
                             pairs: dict[tuple[str, str], PairCounts]) -> None:
    """The labelled loans per (champion bin, challenger bin, decisions, outcome), and every shadowed decision per bin
    of each model (as ``scored_days`` rows: the window as one day)."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for row in await conn.fetch(
        f"SELECT champion, challenger, {bin_sql('pp')}, {bin_sql('cp')}, denied, c_denied, o.defaulted, count(*) "
        f"FROM (SELECT {_COLUMNS}, p.request_id FROM {log_table} p WHERE {_SHADOWED}) s "
        f"JOIN {outcomes_table} o USING (request_id) GROUP BY 1, 2, 3, 4, 5, 6, 7",
        since, until, timeout=timeout_s,
    ):
        cells.setdefault((row[0], row[1]), []).append(tuple(row[2:]))
    for key, rows in cells.items():
        columns = list(zip(*rows))
        pairs[key].paired = PairedCells(np.array(columns[0], np.float64), np.array(columns[1], np.float64),
                                        np.array(columns[2], bool), np.array(columns[3], bool),
                                        np.array(columns[4], np.int8), np.array(columns[5], np.int64))
    sides: dict[tuple[str, str, bool], list[Any]] = {}
    for row in await conn.fetch(
        f"WITH s AS MATERIALIZED (SELECT {_COLUMNS} FROM {log_table} p WHERE {_SHADOWED}) "
        f"SELECT true, champion, challenger, {bin_sql('pp')}, denied, count(*), sum(pp), sum(pp * pp), min(pp), "
        "max(pp) FROM s GROUP BY 2, 3, 4, 5 UNION ALL "
        f"SELECT false, champion, challenger, {bin_sql('cp')}, c_denied, count(*), sum(cp), sum(cp * cp), min(cp), "
        "max(cp) FROM s GROUP BY 2, 3, 4, 5",
        since, until, timeout=timeout_s,
    ):
        sides.setdefault((row[1], row[2], row[0]), []).append((_EPOCH, row[1], row[3], row[4], -1, *row[5:]))
    for (champion, challenger, is_champion), rows in sides.items():
        if is_champion:
            pairs[(champion, challenger)].champion_scored = bins_of(rows)
        else:
            pairs[(champion, challenger)].challenger_scored = bins_of(rows)
