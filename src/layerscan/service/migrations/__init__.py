"""Alembic migrations of the service store; `Store.open` runs them to head."""
