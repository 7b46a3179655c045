"""Performance: five-minute rollups of latencies, job durations and delivery outcomes

`performance_samples` holds one row per series, key and five minutes, written by the rollup
job every minute and read by the Performance page (never the raw rows). The rollup reads the
notifications sent, delivered or failed in its last minutes through an index on
notifications.updated_at.

Revision ID: b8e1c4d7f2a9
Revises: 9d4f2a6c8e10
Create Date: 2026-11-28 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.models.base


# revision identifiers, used by Alembic.
revision = 'b8e1c4d7f2a9'
down_revision = '9d4f2a6c8e10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'performance_samples',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('series', sa.String(length=24), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('bucket_start', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('delivered', sa.Integer(), nullable=False),
        sa.Column('sum_ms', sa.Float(), nullable=True),
        sa.Column('p50_ms', sa.Float(), nullable=True),
        sa.Column('p95_ms', sa.Float(), nullable=True),
        sa.Column('p99_ms', sa.Float(), nullable=True),
        sa.Column('max_ms', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('series', 'key', 'bucket_start', name='uq_performance_samples_bucket'),
    )
    with op.batch_alter_table('performance_samples', schema=None) as batch_op:
        batch_op.create_index(
            'ix_performance_samples_series_bucket', ['series', 'bucket_start'], unique=False
        )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_updated_at', ['updated_at'], unique=False)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_updated_at')
    op.drop_table('performance_samples')
