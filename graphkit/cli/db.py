"""`graphkit db`: the registry database's schema (`graphkit db upgrade`).

sqlalchemy and alembic belong to the `serve` extra, so they are imported inside the command:
the rest of the CLI works without them, and this command says how to get them.
"""

from __future__ import annotations

from types import ModuleType

import click

from graphkit.errors import GraphkitError

EXTRA_HINT = "pip install 'graphkit-backprop[serve]'"

db_option = click.option(
    "--db", "db", metavar="URL", default=None,
    help="Database URL: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB "
         "[default: sqlite:///graphkit.db in the working folder].",
)


def store_module() -> ModuleType:
    """graphkit.service.store, or one `error:` line naming the extra to install."""
    try:
        from graphkit.service import store
    except ImportError:
        raise GraphkitError(f"graphkit db needs the serve extra: {EXTRA_HINT}") from None
    return store


@click.group("db", short_help="Manage the registry database's schema.")
def db_group() -> None:
    """Manage the schema of the database `graphkit serve` keeps its graphs in.

    The database is a SQLite file (graphkit.db in the working folder unless --db names one)
    or a PostgreSQL server: --db postgresql://USER:PASSWORD@HOST:PORT/DB.

    \b
    Examples:
      graphkit db upgrade
      graphkit db upgrade --db sqlite:///registry.db
    """


@db_group.command("upgrade", short_help="Create or migrate the database to the newest schema.")
@db_option
def upgrade_command(db: str | None) -> None:
    """Create the registry's tables, or migrate them to this graphkit's schema.

    Safe to run again (it does nothing when the schema is current) and while other upgrades
    run (they are serialised). Back the database up first when it holds graphs you care about.
    """
    store = store_module()
    url = store.mask(store.database_url(db))
    revision = store.upgrade(db)
    click.echo(f"{url}: schema at revision {revision} (newest)")
