"""The store's tables (SQLAlchemy Core), shared by the store and its Alembic migrations.

`graphs` holds one row per name ever used: its `next_version` counter outlives deletes, so a
version number, once handed out, is never handed out again for that name (a client or a plan
cache keyed on (name, version) can never see different content under the same key).
`versions` holds the immutable versions: the canonical JSON bytes and their sha256.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

VERSION_TABLE = "graphkit_alembic_version"
"""Alembic's revision table, prefixed so a PostgreSQL database shared with other apps works."""

metadata = MetaData(naming_convention={
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
})

graphs = Table(
    "graphs", metadata,
    Column("name", String(128), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("next_version", Integer, nullable=False),
)

versions = Table(
    "versions", metadata,
    Column("graph", String(128), ForeignKey("graphs.name", ondelete="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("nodes", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    UniqueConstraint("graph", "sha256"),
)
