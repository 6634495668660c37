"""glance-api: serve the Images API on ``bind_host:bind_port``."""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from glance.cmd import common as cmd
from glance.common import config
from glance.common import server
from glance.common import wsgi_app
from glance.db import api as db_api
from glance.db import migration

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def _warn_if_schema_behind():
    pending = migration.pending_revisions()
    if pending:
        LOG.warning('Database schema is behind by %d revision(s); run '
                    '"glance-manage db sync".', len(pending))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cmd.load_config(argv, 'glance-api')
    cmd.setup_logging('glance-api')
    try:
        config.check_values()
        db_api.connect()
        _warn_if_schema_behind()
        app = wsgi_app.load_app()
        db_api.dispose()
        server.serve(app)
    except cmd.USER_ERRORS as e:
        cmd.fail(e)
    return 0


if __name__ == '__main__':
    sys.exit(main())
