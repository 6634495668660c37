"""Paste factories named as upstream's, so operators' paste files load.

``root_app_factory`` maps URL prefixes to apps; ``pipeline_factory`` picks
the filter pipeline named by ``[paste_deploy] flavor`` (``default`` when
unset) from the ``api`` composite.
"""

from oslo_config import cfg

CONF = cfg.CONF


class URLMap:
    """Dispatch on the longest matching path prefix, moving the prefix from
    PATH_INFO to SCRIPT_NAME as WSGI expects."""

    def __init__(self, apps):
        self.apps = sorted(apps.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '') or '/'
        for prefix, app in self.apps:
            if prefix == '/' or path == prefix or path.startswith(
                    prefix + '/'):
                if prefix != '/':
                    environ['SCRIPT_NAME'] = (environ.get('SCRIPT_NAME', '')
                                              + prefix)
                    environ['PATH_INFO'] = path[len(prefix):]
                return app(environ, start_response)
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'Not Found']


def root_app_factory(loader, global_conf, **local_conf):
    apps = {}
    for prefix, app_name in local_conf.items():
        if prefix.startswith('/'):
            apps[prefix.rstrip('/') or '/'] = loader.get_app(
                app_name, global_conf=global_conf)
    return URLMap(apps)


def pipeline_factory(loader, global_conf, **local_conf):
    flavor = CONF.paste_deploy.flavor or 'default'
    try:
        names = local_conf[flavor].split()
    except KeyError:
        raise LookupError('no paste pipeline named %r in the api composite '
                          '(check [paste_deploy] flavor)' % flavor)
    app = loader.get_app(names[-1], global_conf=global_conf)
    for name in reversed(names[:-1]):
        app = loader.get_filter(name, global_conf=global_conf)(app)
    return app
