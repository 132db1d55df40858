"""Alembic revision scripts of the store's schema, oldest first by number."""
