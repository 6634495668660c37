"""image_location_claims: which scrubber is deleting a location's data.

Several scrubbers (one per glance-api node) share one queue, the
pending_delete locations. A scrubber inserts a claim row before it deletes
a location's data and removes it when the location is marked deleted, so no
two scrubbers delete the same data; a claim older than the lease (its
scrubber died) may be taken over.

Revision ID: scrubber_claims01
Revises: location_status01
"""

from alembic import op
import sqlalchemy as sa

revision = 'scrubber_claims01'
down_revision = 'location_status01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'image_location_claims',
        sa.Column('location_id', sa.Integer(),
                  sa.ForeignKey('image_locations.id'), primary_key=True,
                  nullable=False, autoincrement=False),
        sa.Column('claimed_by', sa.String(255), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        mysql_engine='InnoDB', mysql_charset='utf8')
