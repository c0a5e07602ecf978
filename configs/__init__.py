"""ml_collections configs, one `get_config()` per agent; every key carries a one-line comment."""
