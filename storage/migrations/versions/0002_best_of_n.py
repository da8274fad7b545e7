"""Best of N: which candidate of a draw each joke was, and what the judge thought of it.

Revision ID: 0002_best_of_n
Revises: 0001_initial
Create Date: 2026-12-05

Jokes stored before best of N were the only candidate of their draw, so they get rank 0 of 1;
their judge score and version stay unknown (NULL). Ratings can then be joined to the rank and
the judge's score, to tell whether what the judge prefers is what people like.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_best_of_n"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jokes") as batch:
        batch.add_column(sa.Column("candidate_rank", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("candidates", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("judge_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("judge_version", sa.String(64), nullable=True))
    op.execute("UPDATE jokes SET candidate_rank = 0, candidates = 1")


def downgrade() -> None:
    with op.batch_alter_table("jokes") as batch:
        batch.drop_column("judge_version")
        batch.drop_column("judge_score")
        batch.drop_column("candidates")
        batch.drop_column("candidate_rank")
