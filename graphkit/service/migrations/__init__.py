"""The store's schema under Alembic, configured in code: no alembic.ini is needed at run time.

`upgrade_engine` runs `upgrade head` inside one write transaction: on SQLite that transaction
starts with BEGIN IMMEDIATE and on PostgreSQL it takes an advisory lock first, so servers
starting at once on a new database create the schema once, and the others see it done.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from graphkit.service.tables import VERSION_TABLE, metadata

HERE = Path(__file__).resolve().parent


def config(url: str | None = None) -> Config:
    """An Alembic Config pointing at this package's scripts (and at `url` for the alembic CLI)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    """The revision scripts, read once per process (check_schema may back a readiness probe)."""
    return ScriptDirectory.from_config(config())


def head_revision() -> str:
    """The newest revision this graphkit's code knows."""
    head = _scripts().get_current_head()
    assert head is not None, "graphkit.service.migrations has no revisions"
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this graphkit knows (a database at another one is from a newer graphkit)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def current_revision(engine: Engine) -> tuple[str | None, bool]:
    """The database's revision (None if never stamped) and whether any store table exists."""
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        present = bool(names & {VERSION_TABLE, *metadata.tables})
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision(), present


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """`alembic upgrade` on the engine's database, serialised against concurrent upgrades."""
    writer = engine.execution_options(graphkit_write=True)  # BEGIN IMMEDIATE on SQLite
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": 0x67726B6974})
        cfg = config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
