"""Credit-scoring HTTP application on Ray Serve: features, settings, schemas, routes."""
