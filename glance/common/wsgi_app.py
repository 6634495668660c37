"""Builds the API application from the paste file, as every server does."""

from oslo_config import cfg
from paste import deploy

from glance.common import config
from glance.common import exception
from glance.common import signatures
from glance.db import api as db_api
from glance import stores

CONF = cfg.CONF


class PasteConfigError(exception.GlanceError):
    message = 'Cannot load the paste pipeline: %(reason)s'


def load_app():
    """The WSGI app of ``[paste_deploy]``'s file and flavor."""
    path = config.paste_config_file()
    if path is None:
        raise PasteConfigError(reason='glance-api-paste.ini not found next '
                                      'to the config file; set '
                                      '[paste_deploy] config_file')
    stores.init()
    signatures.install()
    try:
        return deploy.loadapp('config:%s' % path,
                              name=config.paste_app_name())
    except (LookupError, OSError, ImportError) as e:
        raise PasteConfigError(reason='%s: %s' % (path, e))


def reset_after_fork():
    """A forked worker must not reuse its parent's database connections."""
    db_api.dispose()
