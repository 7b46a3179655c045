"""Integration log: one structured log of every integration's events

Revision ID: 9d4f2a6c8e10
Revises: a7c2e9f4b1d8
Create Date: 2026-11-27 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.models.base


# revision identifiers, used by Alembic.
revision = '9d4f2a6c8e10'
down_revision = 'a7c2e9f4b1d8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'integration_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('integration', sa.String(length=20), nullable=False),
        sa.Column('level', sa.String(length=10), nullable=False),
        sa.Column('event', sa.String(length=60), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('context', sa.JSON(), nullable=False),
        sa.Column('error_kind', sa.String(length=120), nullable=True),
        sa.Column('activity', sa.Boolean(), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('mpesa_transaction_id', sa.Integer(), nullable=True),
        sa.Column('notification_id', sa.Integer(), nullable=True),
        sa.Column('webhook_delivery_id', sa.Integer(), nullable=True),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('member_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('integration_log', schema=None) as batch_op:
        batch_op.create_index('ix_integration_log_created', ['created_at'], unique=False)
        batch_op.create_index(
            'ix_integration_log_integration_created', ['integration', 'created_at'], unique=False
        )
        batch_op.create_index('ix_integration_log_level_created', ['level', 'created_at'], unique=False)
        batch_op.create_index('ix_integration_log_error_kind', ['error_kind', 'created_at'], unique=False)
        batch_op.create_index('ix_integration_log_activity', ['activity', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_integration_log_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_integration_log_job_id'), ['job_id'], unique=False)
        batch_op.create_index(
            batch_op.f('ix_integration_log_mpesa_transaction_id'), ['mpesa_transaction_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_integration_log_notification_id'), ['notification_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_integration_log_webhook_delivery_id'), ['webhook_delivery_id'], unique=False
        )


def downgrade():
    op.drop_table('integration_log')
