"""The prediction log: record layout, PostgreSQL and JSONL stores, the spool, queries."""
