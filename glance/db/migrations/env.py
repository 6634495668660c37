"""Alembic environment: runs on the connection glance.db.migration hands in."""

from alembic import context

from glance.db import models


def run_migrations():
    connection = context.config.attributes['connection']
    context.configure(connection=connection,
                      target_metadata=models.Base.metadata,
                      render_as_batch=connection.dialect.name == 'sqlite',
                      # SQLite can roll DDL back too: make each migration
                      # all or nothing there as on PostgreSQL.
                      transactional_ddl=connection.dialect.name != 'mysql',
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
