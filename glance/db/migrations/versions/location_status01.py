"""image_locations.status: active, pending_delete or deleted.

Existing rows take their status from their image's: active -> active,
pending_delete -> pending_delete, killed or deleted -> deleted; queued,
saving and every other status -> active (unknown ones are logged by
image). The index on (status, image_id) makes the scrubber's queue, the
pending_delete rows, a cheap query on any number of locations.

A database adopted from upstream Glance already has the column (with the
same mapping applied when upstream added it); then only the index is made.

Revision ID: location_status01
Revises: 2024_1_schema01
"""

import logging

from alembic import op
import sqlalchemy as sa

revision = 'location_status01'
down_revision = '2024_1_schema01'
branch_labels = None
depends_on = None

LOG = logging.getLogger('glance.db.migrations')

# Image status -> status of its locations; anything else keeps 'active'.
STATUS_FROM_IMAGE = {'pending_delete': 'pending_delete', 'killed': 'deleted',
                     'deleted': 'deleted'}
KNOWN_IMAGE_STATUSES = {'queued', 'saving', 'active', 'killed', 'deleted',
                        'pending_delete', 'deactivated', 'uploading',
                        'importing'}


def _warn_about_unknown_statuses(conn):
    images = sa.table('images', sa.column('id'), sa.column('status'))
    for image_id, status in conn.execute(
            sa.select(images.c.id, images.c.status).where(
                images.c.status.not_in(KNOWN_IMAGE_STATUSES))):
        LOG.warning('Image %s has unknown status %r: its locations are '
                    'marked active.', image_id, status)


def _map_statuses(conn):
    images = sa.table('images', sa.column('id'), sa.column('status'))
    locations = sa.table('image_locations', sa.column('image_id'),
                         sa.column('status'))
    for image_status, location_status in STATUS_FROM_IMAGE.items():
        conn.execute(locations.update().where(
            locations.c.image_id.in_(sa.select(images.c.id).where(
                images.c.status == image_status))).values(
            status=location_status))


def upgrade():
    conn = op.get_bind()
    columns = {c['name'] for c in sa.inspect(conn).get_columns(
        'image_locations')}
    if 'status' not in columns:
        with op.batch_alter_table('image_locations') as batch:
            batch.add_column(sa.Column('status', sa.String(30),
                                       nullable=False,
                                       server_default='active'))
        _warn_about_unknown_statuses(conn)
        _map_statuses(conn)
    op.create_index('ix_image_locations_status_image_id', 'image_locations',
                    ['status', 'image_id'])
