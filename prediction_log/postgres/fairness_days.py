"""``fairness_days`` in PostgreSQL: ``fairness_counts`` per day of the decision, kept by three statement triggers so
``GET /fairness`` and the promotion gate read days × groups × bins, not the window's decisions.

- a decision stored (``predictions``): its age band counted, no outcome yet (-1);
- a group membership stored (``group_membership``): the decision counted in that group, with its outcome if known;
- an outcome stored (``outcomes``): the decision moved from -1 to its outcome in its age band and in every group it
  was posted for.

Each trigger reads only the rows its statement stored (a re-posted duplicate is not among them), in the same
transaction. The group and outcome triggers take one advisory lock first, so of a group post and an outcome post
for the same decision the later one always sees the earlier one committed (each statement inside a trigger reads a
fresh snapshot under READ COMMITTED): the decision is counted once, at its outcome. The table and its triggers are
made together, under a lock that holds the three tables' writers back while what they already hold is counted once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from core.features import AGE_ATTRIBUTE, AGE_BANDS
from prediction_log.fairness_counts import FairnessCounts, empty
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.labelled import bin_sql

TABLE = "fairness_days"
KEY = ("day", "attribute", "group_name", "denied", "challenger_version", "challenger_denied", "defaulted",
       "probability_bin")
SQL_TYPES = {"day": "timestamptz NOT NULL", "attribute": "text NOT NULL", "group_name": "text NOT NULL",
             "denied": "boolean NOT NULL", "challenger_version": "text NOT NULL",
             "challenger_denied": "smallint NOT NULL", "defaulted": "smallint NOT NULL",
             "probability_bin": "smallint NOT NULL", "decisions": "bigint NOT NULL",
             "probability_sum": "double precision NOT NULL"}
TRIGGERS = {"decisions": "fairness_days_decisions", "groups": "fairness_days_groups",
            "outcomes": "fairness_days_outcomes"}
_LOCK = "PERFORM pg_advisory_xact_lock(hashtext('fairness_days'))"


def age_band_sql(days_birth: str) -> str:
    """``core.features.age_bands`` in SQL."""
    years = f"(-{days_birth} / 365.25)"
    cases = " ".join(f"WHEN {years} < {bound} THEN '{label}'" for bound, label in AGE_BANDS[:-1])
    return f"CASE {cases} ELSE '{AGE_BANDS[-1][1]}' END"


def _decision_columns(p: str) -> str:
    """The key's columns a decision gives (day, denied, the challenger's decision, bin) and its probability."""
    return (f"date_trunc('day', {p}.ts, 'UTC') AS day, {p}.credit_decision = 'denied' AS denied, "
            f"coalesce({p}.challenger_version, '') AS challenger_version, "
            f"CASE WHEN {p}.challenger_decision IS NULL THEN -1 WHEN {p}.challenger_decision = 'denied' THEN 1 "
            f"ELSE 0 END AS challenger_denied, {bin_sql(f'{p}.probability_default')} AS probability_bin, "
            f"{p}.probability_default AS pp")


def _upsert(rows: str) -> str:
    """Add ``rows`` (the key's columns, ``n`` decisions and ``s`` their probabilities) into the table."""
    key = ", ".join(KEY)
    return (f"INSERT INTO {TABLE} AS a ({key}, decisions, probability_sum) "
            f"SELECT {key}, sum(n), sum(s) FROM ({rows}) r GROUP BY {key} ORDER BY {key} "
            f"ON CONFLICT ({key}) DO UPDATE SET decisions = a.decisions + excluded.decisions, "
            "probability_sum = a.probability_sum + excluded.probability_sum")


def _age_rows(decisions: str, outcome: str) -> str:
    return (f"SELECT day, '{AGE_ATTRIBUTE}' AS attribute, group_name, denied, challenger_version, challenger_denied, "
            f"{outcome} AS defaulted, probability_bin, 1 AS n, pp AS s FROM {decisions}")


def _sql(log: str, outcomes: str, groups: str) -> dict[str, str]:
    """The statements: each trigger's (over its transition table ``stored``) and the first count of everything."""
    decided = f"(SELECT {_decision_columns('p')}, {age_band_sql('p.days_birth')} AS group_name FROM stored p) d"
    membership = (f"SELECT {_decision_columns('p')}, m.attribute, m.group_name, coalesce(o.defaulted, -1) AS y "
                  f"FROM {{members}} m JOIN {log} p USING (request_id) LEFT JOIN {outcomes} o USING (request_id)")
    def every_decision(where: str = "") -> str:
        return (f"(SELECT {_decision_columns('p')}, {age_band_sql('p.days_birth')} AS group_name, "
                f"coalesce(o.defaulted, -1) AS y FROM {log} p LEFT JOIN {outcomes} o USING (request_id) {where}) d")

    labelled = (f"SELECT {_decision_columns('p')}, o.defaulted AS y, p.request_id, "
                f"{age_band_sql('p.days_birth')} AS age FROM stored o JOIN {log} p USING (request_id)")
    labels = (f"SELECT day, '{AGE_ATTRIBUTE}' AS attribute, age AS group_name, denied, challenger_version, "
              f"challenger_denied, probability_bin, pp, y FROM x UNION ALL SELECT day, m.attribute, m.group_name, "
              f"denied, challenger_version, challenger_denied, probability_bin, pp, y FROM x "
              f"JOIN {groups} m USING (request_id)")
    group_rows = ("SELECT day, attribute, group_name, denied, challenger_version, challenger_denied, y AS defaulted, "
                  "probability_bin, 1 AS n, pp AS s FROM ({source}) g")
    window = "p.ts >= $1 AND p.ts < $2"
    key = ", ".join(KEY[1:])
    in_window = (f"SELECT {key}, sum(n), sum(s) FROM ("
                 f"{_age_rows(every_decision(f'WHERE {window}'), 'y')} UNION ALL "
                 f"{group_rows.format(source=membership.format(members=groups) + f' WHERE {window}')}"
                 f") r GROUP BY {key}")
    return {
        "in_window": in_window,
        "decisions": _upsert(_age_rows(decided, "-1")),
        "groups": _upsert(group_rows.format(source=membership.format(members="stored"))),
        "outcomes": _upsert(
            f"WITH x AS ({labelled}), l AS ({labels}) "
            "SELECT day, attribute, group_name, denied, challenger_version, challenger_denied, y AS defaulted, "
            "probability_bin, 1 AS n, pp AS s FROM l UNION ALL SELECT day, attribute, group_name, denied, "
            "challenger_version, challenger_denied, -1, probability_bin, -1, -pp FROM l"),
        "first_count": ";\n    ".join([_upsert(_age_rows(every_decision(), "y")),
                                       _upsert(group_rows.format(source=membership.format(members=groups)))]),
    }


def schema_sql(log: str, outcomes: str, groups: str) -> list[str]:
    """The DDL; ``log``, ``outcomes`` and ``groups`` must exist (``PostgresGroups.ensure_schema`` makes them)."""
    sql = _sql(log, outcomes, groups)
    on = {"decisions": log, "groups": groups, "outcomes": outcomes}

    def function(name: str) -> str:
        lock = f"\n    {_LOCK};" if name != "decisions" else ""
        return (f"CREATE OR REPLACE FUNCTION {TRIGGERS[name]}() RETURNS trigger LANGUAGE plpgsql "
                f"SECURITY DEFINER SET search_path = public, pg_temp AS $$\nBEGIN{lock}\n    {sql[name]};\n"
                "  RETURN NULL;\nEND $$")

    triggers = "\n    ".join(f"CREATE TRIGGER {TRIGGERS[n]} AFTER INSERT ON {on[n]} REFERENCING NEW TABLE AS stored "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGERS[n]}();" for n in TRIGGERS)
    return [
        "SELECT pg_advisory_xact_lock(hashtext('fairness_days_schema'))",
        *(function(name) for name in TRIGGERS),
        f"""DO $$ BEGIN
  IF to_regclass('{TABLE}') IS NULL THEN
    LOCK TABLE {log}, {outcomes}, {groups} IN SHARE ROW EXCLUSIVE MODE;
    CREATE TABLE {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())}, PRIMARY KEY ({', '.join(KEY)}));
    {sql['first_count']};
    {triggers}
  END IF;
END $$""",
    ]


async def ensure_schema(conn: asyncpg.Connection, log: str, outcomes: str, groups: str,
                        timeout_s: float | None = None) -> None:
    await apply_schema(conn, schema_sql(log, outcomes, groups), TABLE, tuple(SQL_TYPES), timeout_s)


def stop_counting_sql(log: str, outcomes: str, groups: str) -> list[str]:
    """What stops the counting (the benchmarks' writes without it); ``ensure_schema`` counts everything again."""
    on = {"decisions": log, "groups": groups, "outcomes": outcomes}
    return [*(f"DROP TRIGGER IF EXISTS {TRIGGERS[n]} ON {on[n]}" for n in TRIGGERS), f"DROP TABLE IF EXISTS {TABLE}"]


async def counts_between(conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                         timeout_s: float) -> FairnessCounts:
    """The counts of the days that start in [since, until), summed over the days."""
    key = ", ".join(KEY[1:])
    rows = await conn.fetch(
        f"SELECT {key}, sum(decisions), sum(probability_sum) FROM {TABLE} "
        "WHERE ($1::timestamptz IS NULL OR day >= $1) AND ($2::timestamptz IS NULL OR day < $2) "
        f"GROUP BY {key} HAVING sum(decisions) > 0", since, until, timeout=timeout_s)
    return _counts(rows)


async def counts_of_rows(conn: asyncpg.Connection, log: str, outcomes: str, groups: str, since: datetime,
                         until: datetime, timeout_s: float) -> FairnessCounts:
    """The same counts made from the decisions with ``since <= ts < until`` (a window's partial days), in the
    database: only the counts cross into Python."""
    return _counts(await conn.fetch(_sql(log, outcomes, groups)["in_window"], since, until, timeout=timeout_s))


def _counts(rows: list[Any]) -> FairnessCounts:
    if not rows:
        return empty()
    c = list(zip(*rows))
    return FairnessCounts(np.array(c[0], dtype=object), np.array(c[1], dtype=object), np.array(c[2], bool),
                          np.array(c[3], dtype=object), np.array(c[4], np.int8), np.array(c[5], np.int8),
                          np.array(c[6], np.int16), np.array(c[7], np.int64), np.array(c[8], np.float64))
