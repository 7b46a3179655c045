"""API speed: covering indexes for the financial summary

The summary's repayment and contribution figures (count and sums per period of a date range)
are read from these indexes alone: an index-only range scan instead of a table lookup per row
(bench/api.py: on SQLite, 12 monthly buckets over 1.2 million repayments and 1.1 million
contributions went from 0.8 s and 2.0 s to 0.2 s and 0.5 s).

Revision ID: c3f1a9d2e4b6
Revises: ab54254d2f8b
Create Date: 2026-11-27 13:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c3f1a9d2e4b6'
down_revision = 'ab54254d2f8b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.create_index(
            'ix_repayments_paid_on_amounts',
            ['paid_on', 'amount', 'principal_amount', 'interest_amount'],
            unique=False,
        )

    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.create_index(
            'ix_contributions_paid_on_kind_amount', ['paid_on', 'kind', 'amount'], unique=False
        )


def downgrade():
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_index('ix_contributions_paid_on_kind_amount')

    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_index('ix_repayments_paid_on_amounts')
