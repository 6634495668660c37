"""Command-line entry points share one way of failing: a line, not a trace."""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from glance.common import config
from glance.common import exception

CONF = cfg.CONF

# Libraries whose routine INFO lines would bury the command's own output.
QUIET_LOGGERS = ['alembic=WARN', 'oslo_db.sqlalchemy.engines=ERROR']

# Problems the user can fix from the message alone.
USER_ERRORS = (exception.GlanceError, cfg.Error, OSError)


def fail(message):
    print('ERROR: %s' % message, file=sys.stderr)
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
