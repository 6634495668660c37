"""``glance-manage db purge``: remove old soft-deleted rows, in batches.

Children go before their parents so no foreign key is ever violated, each
batch is its own short transaction (the API keeps serving), and memory
stays flat whatever the table size. ``images`` rows are kept (their ids
must never be reused, OSSN-0075); ``purge_images_table`` removes them
separately, only once nothing else refers to them.
"""

import datetime
import time

from glance.common import exception
from glance.common.utils import utcnow
from glance.db import api as db_api

# Child tables before parents: task_info refers to tasks.
TABLES = ('task_info', 'image_properties', 'image_tags', 'image_locations',
          'image_members', 'tasks')
# Rows per transaction. A SQLite batch rewrites every index page it
# touches, and at 10,000 rows that is nearly all of them already: fewer,
# bigger batches there (each still holds the write lock about a second).
BATCH_ROWS = 10000
SQLITE_BATCH_ROWS = 50000
PROGRESS_SECONDS = 3
MAX_ROWS_LIMIT = 2147483647
UNLIMITED = -1


def _epoch_days():
    return (utcnow() - datetime.datetime(1970, 1, 1)).days


def parse_age(raw):
    try:
        age = int(raw)
    except (TypeError, ValueError):
        raise exception.Invalid('Invalid int value for age_in_days: %s' % raw)
    if age < 0:
        raise exception.Invalid('Must supply a non-negative value for age.')
    if age >= _epoch_days():
        raise exception.Invalid('Maximal age is count of days since epoch.')
    return age


def parse_max_rows(raw):
    try:
        max_rows = int(raw)
    except (TypeError, ValueError):
        raise exception.Invalid('Invalid int value for max_rows: %s' % raw)
    if max_rows < UNLIMITED:
        raise exception.Invalid('Minimal rows limit is -1.')
    if max_rows > MAX_ROWS_LIMIT:
        raise exception.Invalid("'max_rows' value out of range, must not "
                                "exceed %d." % MAX_ROWS_LIMIT)
    return max_rows


def _batch_rows():
    if db_api.get_engine().dialect.name == 'sqlite':
        return SQLITE_BATCH_ROWS
    return BATCH_ROWS


def _purge_table(table, cutoff, max_rows, report):
    batch_rows = _batch_rows()
    purged = 0
    last_key = None
    last_report = time.monotonic()
    while max_rows == UNLIMITED or purged < max_rows:
        room = batch_rows if max_rows == UNLIMITED else min(
            batch_rows, max_rows - purged)
        # Windows of soft-deleted rows are cheap to find, but may hold
        # rows that must stay: counted exactly only when near max_rows.
        done, last_key = db_api.purge_batch(table, cutoff, room, last_key,
                                            exact=room < batch_rows)
        purged += done
        if last_key is None:
            break
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            report('... %s: %d rows purged so far' % (table, purged))
            last_report = time.monotonic()
    return purged


def purge(age_in_days, max_rows, report, tables=TABLES, dry_run=False):
    """Purge (or with ``dry_run`` count) rows soft-deleted more than
    ``age_in_days`` ago, at most ``max_rows`` per table (-1: no limit);
    ``report`` receives one line per table and the total."""
    cutoff = utcnow() - datetime.timedelta(days=age_in_days)
    if max_rows == 0:
        report('max_rows is 0: nothing purged.')
        return 0
    verb = 'Would purge' if dry_run else 'Purged'
    db_api.tune_for_purge()
    total = 0
    for table in tables:
        if dry_run:
            count = db_api.purge_count(
                table, cutoff, None if max_rows == UNLIMITED else max_rows)
        else:
            count = _purge_table(table, cutoff, max_rows, report)
        report('%s %d rows from %s' % (verb, count, table))
        total += count
    report('%s %d rows in total.' % (verb, total))
    return total
