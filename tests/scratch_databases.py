"""Databases a test module keeps for all its tests (cheaper than one per
test): ``scratch_database(kind, db_servers, tmp_dir)`` -> (url, drop).

``db_servers`` is the session fixture of tests/conftest.py (kind -> admin
URL of a running server); SQLite databases are files in ``tmp_dir``.
"""

import uuid

import sqlalchemy


def scratch_database(kind, db_servers, tmp_dir):
    """A new, empty database of ``kind``; returns (url, drop)."""
    name = f'test_{uuid.uuid4().hex[:12]}'
    if kind == 'sqlite':
        return f'sqlite:///{tmp_dir}/{name}.sqlite', lambda: None
    url = sqlalchemy.engine.make_url(db_servers(kind))
    admin = sqlalchemy.create_engine(url, isolation_level='AUTOCOMMIT',
                                     poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE {name}')

    def drop():
        with admin.connect() as conn:
            if url.get_backend_name() == 'postgresql':
                conn.exec_driver_sql(
                    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {name}')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop
