"""One module per ``vigil`` subcommand; each defines ``register(app)``."""
