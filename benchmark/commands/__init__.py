"""One module per CLI command; each exposes ``register(subparsers)`` and keeps heavy imports inside."""
