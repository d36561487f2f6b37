"""Load generation and benchmarks against the HTTP API."""
