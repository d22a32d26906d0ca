"""shared state for many processes: change log, commit-ordered events, leases, vectors and model files in the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
# PostgreSQL: the id of the writing transaction, so that readers can tail a log in commit order (storage/tail.py).
TX_DEFAULT = "ALTER TABLE {table} ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)"
# One NOTIFY per writing statement wakes the other processes at once; a missed one is caught by their polls.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION frontdesk_notify_{channel}() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('frontdesk_{channel}', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = ("CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
                  "FOR EACH STATEMENT EXECUTE FUNCTION frontdesk_notify_{channel}()")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    op.create_table('changes',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('tx', sa.BigInteger(), nullable=True),
    sa.Column('topic', sa.String(length=30), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=True),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index('ix_changes_tx_id', ['tx', 'id'], unique=False)

    op.create_table('job_leases',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('expires_at', storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('last_owner', sa.String(length=120), nullable=True),
    sa.Column('last_started_at', storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=20), nullable=True),
    sa.Column('last_detail', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('model_files',
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('service_secrets',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tx', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_events_tx_id', ['tx', 'id'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivery_owner', sa.String(length=120), nullable=True))
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title_vector', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('vector_encoder', sa.String(length=120), nullable=True))
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vector', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('retrain_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('lease_until', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))

    if postgres:
        for table, channel in (('changes', 'changes'), ('events', 'events')):
            op.execute(TX_DEFAULT.format(table=table))
            op.execute(NOTIFY_FUNCTION.format(channel=channel))
            op.execute(NOTIFY_TRIGGER.format(table=table, channel=channel))
        # Events written before this revision come first, in id order.
        op.execute("UPDATE events SET tx = 0")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, channel in (('changes', 'changes'), ('events', 'events')):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS frontdesk_notify_{channel}()")
    with op.batch_alter_table('retrain_jobs', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_column('vector')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_column('vector_encoder')
        batch_op.drop_column('title_vector')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('delivery_owner')
        batch_op.drop_column('lease_until')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_tx_id')
        batch_op.drop_column('tx')
    op.drop_table('service_secrets')
    op.drop_table('model_files')
    op.drop_table('job_leases')
    op.drop_table('changes')
