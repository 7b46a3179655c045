"""Notification receipts: the price a provider reports with a delivery report

A report that arrives before its send is recorded waits, and is applied later from the stored
row: it needs the cost and currency (Infobip's price) to set them on the notification then.

Revision ID: e7b9d3f5a1c6
Revises: c4d8e2f6a1b3
Create Date: 2026-11-28 02:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e7b9d3f5a1c6'
down_revision = 'c4d8e2f6a1b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification_receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost', sa.Numeric(precision=15, scale=4), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))


def downgrade():
    with op.batch_alter_table('notification_receipts', schema=None) as batch_op:
        batch_op.drop_column('currency')
        batch_op.drop_column('cost')
