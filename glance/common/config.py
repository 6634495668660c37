"""Configuration options, registered once, under upstream Glance's names.

Every option the service reads lives here (or in the library that owns it:
oslo.db, glance_store, keystonemiddleware) and is listed by ``list_opts`` so
``oslo-config-generator`` can write ``etc/glance-api.conf`` from the code.
"""

import os

import glance_store
from oslo_config import cfg
from oslo_db import options as db_options
from oslo_log import log as logging
from oslo_policy import opts as policy_opts

from glance import version

CONF = cfg.CONF

server_opts = [
    cfg.HostAddressOpt('bind_host', default='0.0.0.0',
                       help='Address the API server listens on.'),
    cfg.PortOpt('bind_port', default=9292,
                help='Port the API server listens on.'),
    cfg.IntOpt('workers', min=0,
               help='Number of API worker processes. Unset means the number '
                    'of CPUs, at most 8; 0 runs a single worker process.'),
    cfg.IntOpt('threads_per_worker', default=8, min=1,
               help='Request threads inside each worker process. A thread '
                    'is busy for the whole of a streamed upload or '
                    'download.'),
    cfg.IntOpt('backlog', default=4096, min=1,
               help='Listen queue length of the server socket.'),
    cfg.IntOpt('http_keepalive_timeout', default=5, min=0,
               help='Seconds an idle keep-alive connection is kept open.'),
    cfg.IntOpt('graceful_shutdown_timeout', default=60, min=0,
               help='Seconds a worker may spend finishing requests in '
                    'flight after SIGTERM before it is killed.'),
    cfg.StrOpt('public_endpoint',
               help='Base URL advertised in the version document instead '
                    'of the URL the request came in on.'),
    cfg.IntOpt('max_request_id_length', default=64, min=0,
               help='Longest accepted X-Openstack-Request-ID header.'),
]

image_opts = [
    cfg.IntOpt('image_size_cap', default=1099511627776, min=1,
               max=9223372036854775808,
               help='Largest image, in bytes, a user may upload.'),
    cfg.StrOpt('user_storage_quota', default='0',
               help='Total bytes of image data a project may store, as an '
                    'integer with an optional B, KB, MB, GB or TB suffix '
                    '(1024-based); 0 means unlimited.'),
    cfg.IntOpt('image_member_quota', default=128,
               help='Members per image; negative means unlimited.'),
    cfg.IntOpt('image_property_quota', default=128,
               help='Extra properties per image; negative means '
                    'unlimited.'),
    cfg.IntOpt('image_tag_quota', default=128,
               help='Tags per image; negative means unlimited.'),
    cfg.IntOpt('image_location_quota', default=10,
               help='Locations per image; negative means unlimited.'),
    cfg.IntOpt('limit_param_default', default=25, min=1,
               help='Page size of a list request that gives no limit.'),
    cfg.IntOpt('api_limit_max', default=1000, min=1,
               help='Largest page size a list request may ask for.'),
    cfg.BoolOpt('show_image_direct_url', default=False,
                help='Show the first location of an image as direct_url.'),
    cfg.BoolOpt('show_multiple_locations', default=False,
                help='Show all locations of an image and allow changing '
                     'them with JSON-patch.'),
    cfg.StrOpt('hashing_algorithm', default='sha512',
               help='hashlib algorithm used for os_hash_value.'),
    cfg.DictOpt('enabled_backends',
                help='Stores of a multi-store deployment, as '
                     'id:type pairs, e.g. "fast:rbd,cheap:file". Each '
                     'store is configured in a section named by its id, '
                     'with the options its driver takes under '
                     '[glance_store] plus store_description and weight; '
                     '[glance_store] default_backend names the store '
                     'uploads go to by default. Unset: single-store '
                     '([glance_store] stores and default_store).'),
    cfg.ListOpt('enabled_import_methods', default=[],
                item_type=cfg.types.String(choices=[
                    'glance-direct', 'web-download', 'copy-image',
                    'glance-download']),
                help='Interoperable import methods offered by '
                     '/v2/info/import. None is implemented yet, so the '
                     'default offers none (upstream offers glance-direct, '
                     'web-download and copy-image).'),
    cfg.BoolOpt('do_secure_hash', default=True,
                help='Compute checksum and os_hash_value of the data behind '
                     'a location added with POST /v2/images/{id}/locations '
                     '(and check them against validation_data if given).'),
    cfg.IntOpt('http_retries', default=3, min=0,
               help='Attempts to read location data for do_secure_hash.'),
    cfg.BoolOpt('allow_anonymous_access', default=False,
                help='With keystone auth, let unauthenticated requests '
                     'through as read-only anonymous users.'),
    cfg.StrOpt('image_cache_dir',
               help='Directory of the image cache; caching is off when '
                    'unset.'),
]

delete_opts = [
    cfg.BoolOpt('delayed_delete', default=False,
                help='Leave the data of a deleted image for the scrubber '
                     'instead of deleting it at once.'),
]

image_format_opts = [
    cfg.ListOpt('container_formats',
                default=['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker',
                         'compressed'],
                help='Container formats images may declare.'),
    cfg.ListOpt('disk_formats',
                default=['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw',
                         'qcow2', 'vdi', 'iso', 'ploop'],
                help='Disk formats images may declare.'),
    cfg.BoolOpt('require_image_format_match', default=True,
                help='Refuse uploaded data whose format (as detected from '
                     'its content) is not the image\'s disk_format.'),
]

task_opts = [
    cfg.IntOpt('task_time_to_live', default=48, min=0,
               deprecated_opts=[cfg.DeprecatedOpt('task_time_to_live',
                                                  group='DEFAULT')],
               help='Hours a task is kept after it succeeded or failed.'),
]

wsgi_opts = [
    cfg.IntOpt('task_pool_threads', default=16, min=1,
               help='Threads per worker process running background tasks '
                    '(location import, hashing, tasks API imports).'),
]

# Which external URLs glance fetches: add-location URLs, import_from of
# tasks. Allowed lists win over disallowed ones when both are set.
import_filtering_opts = [
    cfg.ListOpt('allowed_schemes', default=['http', 'https'],
                item_type=cfg.types.String(quotes=True), bounds=True,
                help='Schemes glance may fetch from; empty allows any not '
                     'in disallowed_schemes.'),
    cfg.ListOpt('disallowed_schemes', default=[],
                item_type=cfg.types.String(quotes=True), bounds=True,
                help='Schemes glance must not fetch from.'),
    cfg.ListOpt('allowed_hosts', default=[],
                item_type=cfg.types.HostAddress(), bounds=True,
                help='Hosts glance may fetch from; empty allows any not in '
                     'disallowed_hosts. Loopback and link-local addresses '
                     'are refused unless their host is listed here.'),
    cfg.ListOpt('disallowed_hosts', default=[],
                item_type=cfg.types.HostAddress(), bounds=True,
                help='Hosts glance must not fetch from.'),
    cfg.ListOpt('allowed_ports', default=[80, 443],
                item_type=cfg.types.Integer(min=1, max=65535),
                bounds=True,
                help='Ports glance may fetch from; empty allows any not in '
                     'disallowed_ports.'),
    cfg.ListOpt('disallowed_ports', default=[],
                item_type=cfg.types.Integer(min=1, max=65535),
                bounds=True,
                help='Ports glance must not fetch from.'),
]

paste_deploy_opts = [
    cfg.StrOpt('flavor',
               help='Paste pipeline suffix: unset for the no-auth '
                    'pipeline, "keystone" for keystonemiddleware auth.'),
    cfg.StrOpt('config_file',
               help='Paste configuration file; by default '
                    'glance-api-paste.ini next to the main config file.'),
]

CONF.register_opts(server_opts)
CONF.register_opts(image_opts)
CONF.register_opts(delete_opts)
CONF.register_opts(image_format_opts, group='image_format')
CONF.register_opts(paste_deploy_opts, group='paste_deploy')
CONF.register_opts(task_opts, group='task')
CONF.register_opts(wsgi_opts, group='wsgi')
CONF.register_opts(import_filtering_opts, group='import_filtering_opts')
db_options.set_defaults(CONF)
policy_opts.set_defaults(CONF, policy_file='policy.yaml')
glance_store.register_opts(CONF)
logging.register_options(CONF)


def list_opts():
    """Options of the project itself, for oslo-config-generator."""
    return [
        ('DEFAULT', server_opts + image_opts + delete_opts),
        ('image_format', image_format_opts),
        ('paste_deploy', paste_deploy_opts),
        ('task', task_opts),
        ('wsgi', wsgi_opts),
        ('import_filtering_opts', import_filtering_opts),
    ]


def check_values():
    """Read every option of the project once: a bad value then fails at
    start (oslo.config only converts a value when it is first read)."""
    for group, opts in list_opts():
        section = CONF if group == 'DEFAULT' else CONF[group]
        for opt in opts:
            getattr(section, opt.dest)


def parse_args(argv, prog, default_config_files=None):
    """Load the command line and config files into CONF.

    Raises oslo.config's errors for missing files or bad values; the
    command-line entry points turn those into one-line messages.
    """
    if default_config_files is None:
        default_config_files = cfg.find_config_files(project='glance',
                                                     prog=prog)
    CONF(argv, project='glance', prog=prog, version=version.version_string,
         default_config_files=default_config_files)


def paste_config_file():
    """Where the paste pipelines are read from, found as upstream does."""
    if CONF.paste_deploy.config_file:
        path = CONF.paste_deploy.config_file
        if not os.path.isabs(path) and CONF.config_file:
            here = os.path.dirname(os.path.abspath(CONF.config_file[-1]))
            path = os.path.join(here, path)
        return os.path.abspath(path)
    name = 'glance-api-paste.ini'
    for conf_file in reversed(CONF.config_file or []):
        candidate = os.path.join(os.path.dirname(conf_file), name)
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    found = CONF.find_file(name)
    return os.path.abspath(found) if found else None


def paste_app_name():
    flavor = CONF.paste_deploy.flavor
    return 'glance-api' + ('-%s' % flavor if flavor else '')
