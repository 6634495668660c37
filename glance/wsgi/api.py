"""``application`` for running glance-api under uWSGI or mod_wsgi.

Reads ``glance-api.conf`` from ``$OS_GLANCE_CONFIG_DIR`` (default
``/etc/glance``), as upstream's WSGI module does.
"""

import os

from glance.common import config
from glance.common import wsgi_app
from glance.cmd.common import setup_logging


def _init_application():
    config_dir = os.environ.get('OS_GLANCE_CONFIG_DIR', '/etc/glance')
    config_file = os.path.join(config_dir, 'glance-api.conf')
    config.parse_args([], 'glance-api', default_config_files=[config_file])
    setup_logging('glance-api')
    config.check_values()
    return wsgi_app.load_app()


application = _init_application()
