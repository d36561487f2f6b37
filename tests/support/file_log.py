"""The file log as a test reads it from outside the server: every line of its day files."""

from __future__ import annotations

from pathlib import Path

from prediction_log.stores import FILE_LOG_NAME


def log_lines(data_dir: Path) -> list[str]:
    """The lines of ``DATA_DIR/predictions/YYYY-MM-DD.jsonl``, oldest day first (a torn line included,
    its bytes that are not UTF-8 replaced)."""
    paths = sorted((data_dir / FILE_LOG_NAME).glob("????-??-??.jsonl"))
    return [line for path in paths for line in path.read_bytes().decode(errors="replace").splitlines() if line.strip()]
