"""glance-scrubber: delete the data of images deleted with delayed_delete.

    glance-scrubber [--config-file F] [--daemon] [--restore IMAGE_ID]

Reads glance-api.conf (for [database] and [glance_store]) and then
glance-scrubber.conf.
"""

import eventlet

# The GreenPool's threads must yield on sockets and sleeps, including the
# database drivers' and glance_store's.
eventlet.monkey_patch()

import gc  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from oslo_config import cfg  # noqa: E402

from glance.cmd import common as cmd  # noqa: E402
from glance.db import api as db_api  # noqa: E402
from glance import stores  # noqa: E402
from glance import scrubber  # noqa: E402

CONF = cfg.CONF
# Cyclic GC thresholds for the scrub loop (Python's default: 700, 10, 10).
GC_THRESHOLDS = (100000, 50, 100)


def _tune_gc():
    """A store delete can allocate heavily (glance_store's s3 driver
    builds a boto3 client, parsing its JSON models, for every call), and
    with the default thresholds the collector rescans every live object
    over and over: about half the CPU of such a delete, which no green
    thread can overlap. What start-up loaded is frozen out of its sight
    and the older generations are collected rarely; cycles still go."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv=None):
    CONF.register_cli_opts(scrubber.cli_opts)
    argv = sys.argv[1:] if argv is None else argv
    defaults = (cfg.find_config_files(project='glance', prog='glance-api')
                + cfg.find_config_files(project='glance',
                                        prog='glance-scrubber'))
    cmd.load_config(argv, 'glance-scrubber', defaults)
    cmd.setup_logging('glance-scrubber')
    if CONF.restore and CONF.daemon:
        cmd.fail('The restore and daemon options should not be set '
                 'together. Please use either of them in one request.')
    try:
        # A connection per green thread, so none waits for or reopens one.
        db_api.connect(fail_fast=not CONF.daemon,
                       min_pool_size=CONF.scrub_pool_size + 1)
        stores.init()
        _tune_gc()
        if CONF.restore:
            scrubber.restore(CONF.restore)
            return 0
        worker = scrubber.Scrubber()
        if not CONF.daemon:
            worker.run()
            return 0
        daemon = scrubber.Daemon(worker)
        signal.signal(signal.SIGTERM, daemon.stop)
        signal.signal(signal.SIGINT, daemon.stop)
        daemon.serve()
    except cmd.USER_ERRORS as e:
        cmd.fail(e)
    return 0


if __name__ == '__main__':
    sys.exit(main())
