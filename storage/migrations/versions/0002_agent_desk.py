"""agent desk: tiers, SLA, events, notes, canned responses, corrections, csat, delivery

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('canned_responses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('team', sa.String(length=60), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('csat_ratings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.String(length=36), nullable=False),
    sa.Column('handoff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('handoff_id')
    )
    with op.batch_alter_table('csat_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csat_ratings_conversation_id'), ['conversation_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('handoff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('conversation_id', sa.String(length=36), nullable=True),
    sa.Column('team', sa.String(length=60), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_conversation_id_id', ['conversation_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)

    op.create_table('handoff_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('handoff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('handoff_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoff_notes_handoff_id'), ['handoff_id'], unique=False)

    op.create_table('intent_corrections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.String(length=36), nullable=False),
    sa.Column('handoff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('predicted_intent', sa.String(length=120), nullable=True),
    sa.Column('corrected_intent', sa.String(length=120), nullable=False),
    sa.Column('model_version', sa.String(length=80), nullable=True),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('corrected_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('intent_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intent_corrections_message_id'), ['message_id'], unique=False)

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('required_skills', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('queued_at', storage.tables.UTCDateTime(timezone=True), nullable=False, server_default='1970-01-01 00:00:00'))
        batch_op.add_column(sa.Column('first_response_at', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_response_due', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution_due', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_response_breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('resolution_breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('corrected_intent', sa.String(length=120), nullable=True))

    op.execute("UPDATE handoffs SET queued_at = created_at")

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('delivery_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_delivery_at', storage.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivery_error', sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_delivery_status'), ['delivery_status'], unique=False)

    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('teams', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('skills', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('tier', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('last_seen_at', storage.tables.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('tier')
        batch_op.drop_column('skills')
        batch_op.drop_column('teams')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_delivery_status'))
        batch_op.drop_column('delivery_error')
        batch_op.drop_column('next_delivery_at')
        batch_op.drop_column('delivery_attempts')
        batch_op.drop_column('delivery_status')

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_column('corrected_intent')
        batch_op.drop_column('resolution_breached')
        batch_op.drop_column('first_response_breached')
        batch_op.drop_column('resolution_due')
        batch_op.drop_column('first_response_due')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('queued_at')
        batch_op.drop_column('required_skills')
        batch_op.drop_column('tier')

    with op.batch_alter_table('intent_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intent_corrections_message_id'))

    op.drop_table('intent_corrections')
    with op.batch_alter_table('handoff_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoff_notes_handoff_id'))

    op.drop_table('handoff_notes')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_kind'))
        batch_op.drop_index('ix_events_conversation_id_id')

    op.drop_table('events')
    with op.batch_alter_table('csat_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_ratings_conversation_id'))

    op.drop_table('csat_ratings')
    op.drop_table('canned_responses')
