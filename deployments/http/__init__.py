"""The HTTP contract: request/response schemas, body validation, the FastAPI object and its routes."""
