"""The decision record, defined once: its columns (name, Arrow type, SQL type) and the block that carries them.

Decisions travel as **blocks**: one Arrow ``RecordBatch`` for many decisions, from the ingress to the
log writer (pickled as a few buffers, not one object per row), into PostgreSQL (binary COPY encoded
by pgpq straight from the columns), the JSONL file log and the spool, and back out to ``/predictions``
and the monitoring code. Nothing else lists the record's fields.

On disk (file log, spool) a record is one JSON object per line; ``explanation`` is held in the block
as JSON text and written as an object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
import orjson
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from pgpq import encoders as pgpq_encoders
from pgpq import schema as pgpq_schema

from core.features import FEATURES

Block: TypeAlias = pa.RecordBatch
"""A block of decision records with ``SCHEMA``."""


@dataclass(frozen=True)
class Column:
    """One field of the record: Arrow type in blocks, SQL type in PostgreSQL."""

    name: str
    arrow: pa.DataType
    sql: str
    nullable: bool = False


_TS_TYPE = pa.timestamp("us", tz="UTC")
RECORD_COLUMNS: tuple[Column, ...] = (
    Column("request_id", pa.string(), "text"),
    Column("ts", _TS_TYPE, "timestamptz"),
    Column("endpoint", pa.string(), "text"),
    Column("model_version", pa.string(), "text"),
    *(Column(f.name, pa.int32() if f.dtype == "int" else pa.float64(),
             "integer" if f.dtype == "int" else "double precision") for f in FEATURES),
    Column("probability_default", pa.float64(), "double precision"),
    Column("prediction", pa.int16(), "smallint"),
    Column("credit_decision", pa.string(), "text"),
    Column("threshold", pa.float64(), "double precision"),
    Column("latency_ms", pa.float32(), "real"),
    Column("explanation", pa.string(), "jsonb", nullable=True),
    Column("challenger_version", pa.string(), "text", nullable=True),
    Column("challenger_probability", pa.float64(), "double precision", nullable=True),
    Column("challenger_decision", pa.string(), "text", nullable=True),
)
"""``explanation`` holds the reason codes of ``?explain=true`` requests (JSON), else null. The ``challenger_*``
columns hold the shadow model's score of the same row: null without a shadow challenger, or when it did not
answer in time. Older lines and tables lack the nullable columns (read as null; tables get them added)."""

COLUMNS: tuple[str, ...] = tuple(c.name for c in RECORD_COLUMNS)
SQL_TYPES: dict[str, str] = {c.name: c.sql + ("" if c.nullable else " NOT NULL") for c in RECORD_COLUMNS}
SCHEMA = pa.schema([pa.field(c.name, c.arrow, nullable=c.nullable) for c in RECORD_COLUMNS])
_OPTIONAL = frozenset(c.name for c in RECORD_COLUMNS if c.nullable)


def empty_block() -> Block:
    return pa.RecordBatch.from_pylist([], schema=SCHEMA)


def compact(block: Block) -> Block:
    """The rows of ``block`` in buffers of their own (a slice shares, and would serialize, its parent's)."""
    return block.take(pa.array(np.arange(len(block), dtype=np.int64)))


def concat(blocks: Sequence[Block]) -> Block:
    """One block holding the rows of ``blocks`` in order."""
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        return empty_block()
    return pa.Table.from_batches(blocks, schema=SCHEMA).combine_chunks().to_batches()[0]


def request_ids(block: Block) -> list[str]:
    return block.column("request_id").to_pylist()


# ---- JSON lines (file log, spool) ----

def column_lists(block: Block, parse_explanation: bool = False) -> list[list[Any]]:
    """Each column as a Python list, made in C: ISO text for ``ts``, ``latency_ms`` to 3 decimals, and
    ``explanation`` as JSON fragments (for encoding) or objects (``parse_explanation``)."""
    out: list[list[Any]] = []
    for name in COLUMNS:
        column = block.column(name)
        if name == "ts":
            text = np.datetime_as_string(column.to_numpy(zero_copy_only=False).astype("datetime64[us]"), unit="us")
            out.append(np.char.add(text, "+00:00").tolist())
        elif name == "explanation":
            wrap = orjson.loads if parse_explanation else orjson.Fragment
            out.append([None if e is None else wrap(e) for e in column.to_pylist()])
        elif name == "latency_ms":
            out.append(np.round(column.to_numpy().astype(np.float64), 3).tolist())
        elif pa.types.is_string(column.type) or column.null_count:
            out.append(column.to_pylist())
        else:
            out.append(column.to_numpy().tolist())
    return out


def from_rows(rows: Iterable[dict[str, Any]]) -> Block:
    """A block from JSON-decoded objects (``ts`` as ISO text or datetime; ``explanation`` as object or null)."""
    parsed = []
    for row in rows:
        row = {c: row.get(c) if c in _OPTIONAL else row[c] for c in COLUMNS}
        if isinstance(row["ts"], str):
            row["ts"] = datetime.fromisoformat(row["ts"])
        if row["explanation"] is not None and not isinstance(row["explanation"], str):
            row["explanation"] = orjson.dumps(row["explanation"]).decode()
        parsed.append(row)
    return pa.RecordBatch.from_pylist(parsed, schema=SCHEMA)


# ---- API rows ----

def as_dicts(block: Block) -> list[dict[str, Any]]:
    """JSON-ready mappings for API responses (ISO timestamps, explanation as an object)."""
    names = COLUMNS
    return [dict(zip(names, values)) for values in zip(*column_lists(block, parse_explanation=True))]


def row_values(block: Block, i: int) -> tuple[Any, ...]:
    """Record ``i`` as a tuple in ``COLUMNS`` order (PostgreSQL's row-by-row fallback)."""
    return tuple(block.column(c)[i].as_py() for c in COLUMNS)


# ---- PostgreSQL binary COPY ----

def _pg_encoder(field: pa.Field) -> Any:
    if field.name == "explanation":
        return pgpq_encoders.StringEncoderBuilder.new_with_output(field, pgpq_schema.Jsonb())
    builders = {
        pa.string(): pgpq_encoders.StringEncoderBuilder,
        _TS_TYPE: pgpq_encoders.TimestampMicrosecondEncoderBuilder,
        pa.float64(): pgpq_encoders.Float64EncoderBuilder,
        pa.float32(): pgpq_encoders.Float32EncoderBuilder,
        pa.int32(): pgpq_encoders.Int32EncoderBuilder,
        pa.int16(): pgpq_encoders.Int16EncoderBuilder,
    }
    return builders[field.type](field)


def to_pg_binary(block: Block) -> bytes:
    """The block in PostgreSQL's binary COPY format, columns in ``COLUMNS`` order (encoded by pgpq, in Rust)."""
    encoder = ArrowToPostgresBinaryEncoder.new_with_encoders(SCHEMA, {f.name: _pg_encoder(f) for f in SCHEMA})
    return bytes(encoder.write_header()) + bytes(encoder.write_batch(block)) + bytes(encoder.finish())


def timestamp_of(row: dict[str, Any]) -> datetime:
    """A parsed JSONL row's timestamp (aware)."""
    ts = row["ts"]
    return datetime.fromisoformat(ts) if isinstance(ts, str) else ts
