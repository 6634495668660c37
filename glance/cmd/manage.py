"""glance-manage: database administration.

    glance-manage [--config-file F] db sync|upgrade [REV]|version|check

The legacy spellings ``db_sync``, ``db_upgrade``, ``db_version`` and
``db_check`` are accepted too, as upstream does.
"""

import sys

from oslo_config import cfg

from glance import cmd
from glance.db import api as db_api
from glance.db import migration

CONF = cfg.CONF

EXIT_UPGRADE_NEEDED = 3


def db_sync(args):
    migration.upgrade()
    print('Database is synced successfully.')


def db_upgrade(args):
    revision = args.revision or 'heads'
    migration.upgrade(revision)
    print('Upgraded database to: %s' % ', '.join(
        migration.current_revisions()))


def db_version(args):
    revisions = migration.current_revisions()
    if not revisions:
        print('Database is not under version control; run '
              '"glance-manage db sync".')
    for revision in revisions:
        print(revision)


def db_check(args):
    pending = migration.pending_revisions()
    if not pending:
        print('Database is up to date. No upgrades needed.')
        return 0
    print('Database is not up to date: %d revision(s) to apply (%s). '
          'Run "glance-manage db sync".' % (len(pending), ', '.join(pending)))
    return EXIT_UPGRADE_NEEDED


DB_ACTIONS = {
    'sync': (db_sync, 'Upgrade the schema to the latest revision.'),
    'upgrade': (db_upgrade, 'Upgrade the schema to REV (default: latest).'),
    'version': (db_version, 'Print the schema revision of the database.'),
    'check': (db_check, 'Exit 0 if the schema is current, 3 if not.'),
}


def _add_action(subparsers, name, func, help_text):
    parser = subparsers.add_parser(name, help=help_text)
    parser.set_defaults(func=func)
    if name.endswith('upgrade'):
        parser.add_argument('revision', nargs='?')
        parser.add_argument('--version', dest='revision_option')


def _add_command_parsers(subparsers):
    db = subparsers.add_parser('db', help='Database administration.')
    actions = db.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    for name, (func, help_text) in DB_ACTIONS.items():
        _add_action(actions, name, func, help_text)
        _add_action(subparsers, 'db_' + name, func, help_text)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_command_parsers,
                                help='Available commands')


class _Args:
    """The parsed sub-command, with --version folded into the revision."""

    def __init__(self, command):
        self.revision = (getattr(command, 'revision_option', None)
                         or getattr(command, 'revision', None))


def main(argv=None):
    CONF.register_cli_opt(command_opt)
    argv = sys.argv[1:] if argv is None else argv
    defaults = (cfg.find_config_files(project='glance', prog='glance-api')
                + cfg.find_config_files(project='glance',
                                        prog='glance-manage'))
    cmd.load_config(argv, 'glance-manage', defaults)
    cmd.setup_logging('glance-manage')
    try:
        db_api.connect(fail_fast=True)
        return CONF.command.func(_Args(CONF.command)) or 0
    except cmd.USER_ERRORS as e:
        cmd.fail(e)


if __name__ == '__main__':
    sys.exit(main())
