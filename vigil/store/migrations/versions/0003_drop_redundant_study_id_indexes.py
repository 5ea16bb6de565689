"""drop the study_id indexes that a composite index already starts with

``airesult.study_id`` is the first column of uq_airesult_study_model, and ``finalread.study_id``
of ix_finalread_current: every query by study_id can use those. The single-column copies only
cost an index insert per stored row (bench/README.md, seventh session).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 04:26:12
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_airesult_study_id", table_name="airesult")
    op.drop_index("ix_finalread_study_id", table_name="finalread")


def downgrade() -> None:
    op.create_index("ix_finalread_study_id", "finalread", ["study_id"], unique=False)
    op.create_index("ix_airesult_study_id", "airesult", ["study_id"], unique=False)
