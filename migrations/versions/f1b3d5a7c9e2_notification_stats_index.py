"""Notifications: an index for the delivery statistics and the log's date range

The overview counts a period's notifications by channel, provider and status in one GROUP BY;
with (created_at, channel, provider, status) indexed, that is an index-only range scan rather than
a scan of the whole table, and the log's date filter uses the same index.

Revision ID: f1b3d5a7c9e2
Revises: e5a7c9d1b3f2
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f1b3d5a7c9e2'
down_revision = 'e5a7c9d1b3f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(
            'ix_notifications_created_stats',
            ['created_at', 'channel', 'provider', 'status'],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_created_stats')
