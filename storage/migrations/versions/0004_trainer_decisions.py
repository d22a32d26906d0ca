"""trainer decisions: rejected candidates, pruned model files, the step of a retrain job

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejected_at', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rejected_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('pruned_at', storage.tables.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('retrain_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step', sa.String(length=20), nullable=False, server_default='queued'))

    # Jobs that ended before this revision: their step is their outcome.
    op.execute("UPDATE retrain_jobs SET step = 'done' WHERE status = 'succeeded'")
    op.execute("UPDATE retrain_jobs SET step = 'failed' WHERE status = 'failed'")


def downgrade() -> None:
    with op.batch_alter_table('retrain_jobs', schema=None) as batch_op:
        batch_op.drop_column('step')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('pruned_at')
        batch_op.drop_column('rejected_by')
        batch_op.drop_column('rejected_at')
