"""The PostgreSQL log: the partitioned ``predictions`` table, its aggregates and counts, and the tables beside it."""
