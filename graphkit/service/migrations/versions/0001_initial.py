"""The initial schema: graphs (with the never-reused version counter) and versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "graphs",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_graphs"),
    )
    op.create_table(
        "versions",
        sa.Column("graph", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["graph"], ["graphs.name"], ondelete="CASCADE",
                                name="fk_versions_graph_graphs"),
        sa.PrimaryKeyConstraint("graph", "version", name="pk_versions"),
        sa.UniqueConstraint("graph", "sha256", name="uq_versions_graph_sha256"),
    )


def downgrade() -> None:
    op.drop_table("versions")
    op.drop_table("graphs")
