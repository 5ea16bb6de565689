"""partial index of placeholder studies (known by Study Instance UID alone)

Every store writer asks once a batch whether any such study exists; before this index the
question scanned the whole study table, so writers cached the answer, and a cached "none" went
stale as soon as another writer (the listener, another ingest worker) created one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PLACEHOLDER_SQL = "accession LIKE 'uid:%' OR accession LIKE 'uid#%'"


def upgrade() -> None:
    op.create_index(
        "ix_study_placeholder",
        "study",
        ["site_code"],
        unique=False,
        sqlite_where=sa.text(PLACEHOLDER_SQL),
        postgresql_where=sa.text(PLACEHOLDER_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_study_placeholder", table_name="study")
