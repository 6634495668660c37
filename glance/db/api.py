"""The DB API: the only module that issues SQL.

Sessions come from oslo.db's enginefacade; writers are retried on deadlock
by oslo.db. On SQLite, several worker processes share one file, so a write
transaction takes the write lock when it begins (``BEGIN IMMEDIATE``) and
waits for it (busy timeout) instead of failing half way with "database is
locked"; WAL lets readers go on while one writer works.
"""

import contextlib
import contextvars
import threading

import sqlalchemy
from oslo_config import cfg
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from sqlalchemy import exc as sa_exc

from glance.common import exception

CONF = cfg.CONF

SQLITE_BUSY_TIMEOUT_MS = 60000

_facade = None
_facade_lock = threading.Lock()
_writing = contextvars.ContextVar('glance_db_writing', default=False)

retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=50, retry_interval=0.1, inc_retry_interval=True,
    retry_on_deadlock=True)


class _Scope:
    """The object enginefacade hangs one transaction's state on."""


def _facade_or_start(fail_fast=False):
    global _facade
    with _facade_lock:
        if _facade is None:
            facade = enginefacade.transaction_context()
            if fail_fast:
                facade.configure(max_retries=1, retry_interval=0)
            engine = _start_engine(facade)
            if engine.dialect.name == 'sqlite':
                _tune_sqlite(engine)
            _facade = facade
    return _facade


def _start_engine(facade):
    if not CONF.database.connection:
        raise exception.BadDatabaseURL(url=None, reason='it is not set')
    try:
        return facade.writer.get_engine()
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError,
            ValueError) as e:
        raise exception.BadDatabaseURL(url=CONF.database.connection,
                                       reason=_first_line(e))
    except (db_exc.DBConnectionError, db_exc.DBError,
            sa_exc.OperationalError) as e:
        raise exception.DatabaseUnavailable(reason=_first_line(e))


def _first_line(error):
    text = str(getattr(error, 'inner_exception', None) or error)
    return text.strip().splitlines()[0] if text.strip() else repr(error)


def _tune_sqlite(engine):
    @sqlalchemy.event.listens_for(engine, 'connect')
    def _on_connect(dbapi_con, record):
        dbapi_con.execute('PRAGMA busy_timeout = %d' % SQLITE_BUSY_TIMEOUT_MS)
        dbapi_con.execute('PRAGMA journal_mode = WAL')

    # Runs before oslo.db's own listener, which then sees the transaction
    # already open and emits nothing.
    @sqlalchemy.event.listens_for(engine, 'begin', insert=True)
    def _on_begin(conn):
        if 'in_transaction' not in conn.info:
            verb = 'BEGIN IMMEDIATE' if _writing.get() else 'BEGIN'
            conn.exec_driver_sql(verb)
            conn.info['in_transaction'] = True


def connect(fail_fast=False):
    """Open the configured database once, raising a GlanceError if it can't.

    ``fail_fast`` makes one connection attempt instead of oslo.db's
    configured retries (for command-line tools).
    """
    engine = _facade_or_start(fail_fast).writer.get_engine()
    try:
        with engine.connect():
            pass
    except sa_exc.DBAPIError as e:
        raise exception.DatabaseUnavailable(reason=_first_line(e))
    return engine


def get_engine():
    return _facade_or_start().writer.get_engine()


def dispose():
    """Forget the engine (after a fork, or when the configuration changes)."""
    global _facade
    with _facade_lock:
        if _facade is not None:
            _facade.writer.get_engine().dispose()
        _facade = None


@contextlib.contextmanager
def reader():
    with _facade_or_start().reader.using(_Scope()) as session:
        yield session


@contextlib.contextmanager
def writer():
    token = _writing.set(True)
    try:
        with _facade_or_start().writer.using(_Scope()) as session:
            yield session
    finally:
        _writing.reset(token)
