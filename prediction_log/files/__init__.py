"""The file log: JSONL day files in DATA_DIR, and the stores beside it (JSONL files)."""
