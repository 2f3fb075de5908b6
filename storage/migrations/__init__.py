"""Alembic migrations, applied automatically when an archive is opened."""
