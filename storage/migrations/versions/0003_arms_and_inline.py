"""Experiment arms and inline-mode jokes.

Revision ID: 0003_arms_and_inline
Revises: 0002_best_of_n
Create Date: 2026-12-06

- `arm`: which side of an A/B experiment served the joke (NULL: no experiment ran), so like
  ratios can be compared per arm.
- `inline_message_id`: a joke posted through inline mode lives in someone else's chat and has no
  chat message id; its buttons are edited through this id instead.
- `inline_chosen`: for jokes offered in an inline answer, whether the user picked it (a pick is a
  rating too); NULL for jokes sent in the bot's own chat. Rows stored before this are all chat
  jokes outside any experiment, so NULL is what is known of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_arms_and_inline"
down_revision: str | None = "0002_best_of_n"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jokes") as batch:
        batch.add_column(sa.Column("arm", sa.String(64), nullable=True))
        batch.add_column(sa.Column("inline_message_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("inline_chosen", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jokes") as batch:
        batch.drop_column("inline_chosen")
        batch.drop_column("inline_message_id")
        batch.drop_column("arm")
