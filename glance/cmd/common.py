"""Command-line entry points share one way of failing: a line, not a trace."""

import sys

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log as logging
from sqlalchemy import exc as sa_exc

from glance.common import config
from glance.common import exception

CONF = cfg.CONF

# Libraries whose routine INFO lines would bury the command's own output.
QUIET_LOGGERS = ['alembic=WARN', 'oslo_db.sqlalchemy.engines=ERROR']

# Problems the user can fix from the message alone, and database errors
# (a failed migration, a lost server), which deserve a line, not a trace.
USER_ERRORS = (exception.GlanceError, cfg.Error, OSError,
               sa_exc.SQLAlchemyError, db_exc.DBError)


def fail(message):
    lines = str(message).strip().splitlines() or [repr(message)]
    print('ERROR: %s' % lines[0], file=sys.stderr)
    sys.exit(1)


def load_config(argv, prog, default_config_files=None):
    """Parse ``argv`` into CONF, exiting with one line on a bad config."""
    try:
        config.parse_args(argv, prog, default_config_files)
    except cfg.ConfigFilesNotFoundError as e:
        fail('config file not found: %s' % ', '.join(e.config_files))
    except cfg.Error as e:
        fail(str(e).strip().splitlines()[0])


def setup_logging(prog):
    logging.set_defaults(default_log_levels=(
        logging.get_default_log_levels() + QUIET_LOGGERS))
    logging.setup(CONF, prog)
