"""The pre-fork HTTP server of glance-api: gunicorn, embedded.

gunicorn's arbiter forks ``workers`` processes, each serving requests on a
pool of threads (``threads_per_worker``); SIGTERM stops accepting and lets
requests in flight finish for up to ``graceful_shutdown_timeout`` seconds.
"""

import os
import signal
import socket

from gunicorn.app import base
from oslo_config import cfg

from glance.common import exception
from glance.common import wsgi_app

CONF = cfg.CONF

MAX_DEFAULT_WORKERS = 8


class AddressInUse(exception.GlanceError):
    message = 'Cannot listen on %(address)s: %(reason)s'


def worker_count():
    if CONF.workers is None:
        return min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS)
    return max(CONF.workers, 1)


def bind_address():
    host = CONF.bind_host
    return '[%s]:%d' % (host, CONF.bind_port) if ':' in host else (
        '%s:%d' % (host, CONF.bind_port))


def check_can_listen():
    """Fail with one line now rather than gunicorn's retries later."""
    family = socket.AF_INET6 if ':' in CONF.bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((CONF.bind_host, CONF.bind_port))
        except OSError as e:
            raise AddressInUse(address=bind_address(), reason=e.strerror)


def _post_fork(server, worker):
    # Until the worker sets its own handlers, the master's copies would
    # swallow a stop signal (the master then waits out the graceful
    # timeout): let one end a worker that serves nothing yet.
    for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(stop, signal.SIG_DFL)
    wsgi_app.reset_after_fork()


class _GunicornApp(base.BaseApplication):

    def __init__(self, app, settings):
        self.app = app
        self.settings = settings
        super().__init__()

    def load_config(self):
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app


def serve(app):
    """Run ``app`` until SIGTERM or SIGINT."""
    check_can_listen()
    settings = {
        'bind': [bind_address()],
        'workers': worker_count(),
        'worker_class': 'gthread',
        'threads': CONF.threads_per_worker,
        'backlog': CONF.backlog,
        'keepalive': CONF.http_keepalive_timeout,
        'graceful_timeout': CONF.graceful_shutdown_timeout,
        # A streamed upload can take longer than any fixed limit; gthread
        # workers report liveness from their main loop, not per request.
        'timeout': 120,
        'limit_request_line': 8190,
        'limit_request_field_size': 16384,
        'proc_name': 'glance-api',
        # Several servers may run side by side (one per test, say); the
        # control socket would be one shared path in $HOME.
        'control_socket_disable': True,
        # Proxy headers (X-Forwarded-Proto, ...) are the business of the
        # http_proxy_to_wsgi filter and [oslo_middleware]
        # enable_proxy_headers_parsing, as upstream; gunicorn would
        # otherwise trust them from 127.0.0.1 (or $FORWARDED_ALLOW_IPS).
        'forwarded_allow_ips': '',
        'post_fork': _post_fork,
        'errorlog': '-',
        'loglevel': 'debug' if CONF.debug else 'info',
    }
    _GunicornApp(app, settings).run()
