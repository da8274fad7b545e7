"""Initial schema: users, jokes, votes.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-28

Written by hand to match storage/models.py; tests/test_storage_migrations.py checks that the
migrated schema and the models agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Row ids: SQLite's 64-bit INTEGER rowid alias, BIGINT on PostgreSQL (as storage/models.py RowId).
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("username", sa.String(64), nullable=True),  # only if the operator opts in
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )

    op.create_table(
        "jokes",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),  # set once the message is sent
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jokes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_jokes_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_jokes_user_id", "jokes", ["user_id"])
    op.create_index("ix_jokes_method", "jokes", ["method"])

    op.create_table(
        "votes",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("joke_id", ROW_ID, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_votes"),
        sa.ForeignKeyConstraint(
            ["joke_id"], ["jokes.id"], name="fk_votes_joke_id_jokes", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_votes_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("joke_id", "user_id", name="uq_votes_joke_id_user_id"),
        sa.CheckConstraint("value IN (-1, 1)", name="ck_votes_value"),
    )
    op.create_index("ix_votes_user_id", "votes", ["user_id"])


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("jokes")
    op.drop_table("users")
