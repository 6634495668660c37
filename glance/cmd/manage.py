"""glance-manage: database administration.

    glance-manage [--config-file F] db sync|upgrade [REV]|version|check
    glance-manage [--config-file F] db purge [--age_in_days N]
        [--max_rows M] [--dry-run]     (also: db purge N M)
    glance-manage [--config-file F] db purge_images_table ...

The legacy spellings ``db_sync``, ``db_upgrade``, ``db_version`` and
``db_check`` are accepted too, as upstream does.
"""

import sys

from oslo_config import cfg

from glance.cmd import common as cmd
from glance.common import exception
from glance.db import api as db_api
from glance.db import migration
from glance.db import purge

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


def _purge(args, tables, default_age):
    age = purge.parse_age(_pick(args.age_option, args.age, default_age))
    max_rows = purge.parse_max_rows(_pick(args.max_rows_option,
                                          args.max_rows, 100))
    if migration.pending_revisions():
        raise exception.Invalid('The database schema is not current; run '
                                '"glance-manage db sync" first.')
    purge.purge(age, max_rows, print, tables, args.dry_run)


def _pick(option, positional, default):
    return option if option is not None else (
        positional if positional is not None else default)


def db_purge(args):
    _purge(args, purge.TABLES, 30)


def db_purge_images_table(args):
    _purge(args, ('images',), 180)


def _revision_args(parser):
    parser.add_argument('revision', nargs='?')
    parser.add_argument('--version', dest='revision_option')


def _purge_args(parser):
    # Values stay strings here so that bad ones get our one-line message
    # rather than argparse's usage dump.
    parser.add_argument('age', nargs='?', metavar='AGE_IN_DAYS')
    parser.add_argument('max_rows', nargs='?', metavar='MAX_ROWS')
    parser.add_argument('--age_in_days', dest='age_option')
    parser.add_argument('--max_rows', dest='max_rows_option')
    parser.add_argument('--dry-run', action='store_true',
                        help='Count what would be purged; delete nothing.')


DB_ACTIONS = {
    'sync': (db_sync, 'Upgrade the schema to the latest revision.', None),
    'upgrade': (db_upgrade, 'Upgrade the schema to REV (default: latest).',
                _revision_args),
    'version': (db_version, 'Print the schema revision of the database.',
                None),
    'check': (db_check, 'Exit 0 if the schema is current, 3 if not.', None),
    'purge': (db_purge, 'Remove rows soft-deleted more than AGE_IN_DAYS '
                        '(30) ago, at most MAX_ROWS (100, -1 = all) per '
                        'table; images rows are kept.', _purge_args),
    'purge_images_table': (db_purge_images_table,
                           'Remove images rows deleted more than '
                           'AGE_IN_DAYS (180) ago that nothing refers to.',
                           _purge_args),
}
# Upstream accepts db_<action> for these only.
LEGACY_ACTIONS = ('sync', 'upgrade', 'version', 'check')


def _add_action(subparsers, name, func, help_text, add_args):
    parser = subparsers.add_parser(name, help=help_text)
    parser.set_defaults(func=func)
    if add_args:
        add_args(parser)


def _add_command_parsers(subparsers):
    db = subparsers.add_parser('db', help='Database administration.')
    actions = db.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    for name, (func, help_text, add_args) in DB_ACTIONS.items():
        _add_action(actions, name, func, help_text, add_args)
        if name in LEGACY_ACTIONS:
            _add_action(subparsers, 'db_' + name, func, help_text, add_args)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_command_parsers,
                                help='Available commands')


class _Args:
    """The parsed sub-command's arguments (absent ones are None)."""

    NAMES = ('revision', 'revision_option', 'age', 'age_option', 'max_rows',
             'max_rows_option', 'dry_run')

    def __init__(self, command):
        for name in self.NAMES:
            setattr(self, name, getattr(command, name, None))
        self.revision = self.revision_option or self.revision


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
