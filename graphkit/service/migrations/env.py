"""Alembic environment: uses the connection graphkit passes in, or sqlalchemy.url for the CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from graphkit.service.tables import VERSION_TABLE, metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=metadata, version_table=VERSION_TABLE,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = context.config.attributes.get("connection")
    if given is not None:
        run(given)
    else:
        from graphkit.service.store import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        try:
            with engine.execution_options(graphkit_write=True).begin() as connection:
                run(connection)
        finally:
            engine.dispose()
