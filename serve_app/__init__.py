"""Entry points of the scoring server: the import path serve_config.yaml names and the launcher."""
