"""The scrubber: deletes the data of images deleted with ``delayed_delete``.

Its queue is the database: locations in ``pending_delete``. Images are
scrubbed in parallel in an eventlet GreenPool of ``scrub_pool_size``; the
locations of one image one after another. Each location is claimed in the
database first, so several scrubbers (one per node) never delete the same
data twice, then its data is deleted through glance_store and the location
marked deleted. An image with no location left waiting becomes deleted.
"""

import datetime
import os
import socket
import time

import eventlet
from oslo_config import cfg
from oslo_log import log as logging

from glance.common import exception
from glance.common.utils import utcnow
from glance.db import api as db_api
from glance import location

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

scrubber_opts = [
    cfg.IntOpt('scrub_time', default=0, min=0,
               help='Seconds an image stays pending_delete before its data '
                    'is deleted.'),
    cfg.IntOpt('scrub_pool_size', default=1, min=1,
               help='Images scrubbed at the same time; 1 scrubs them one '
                    'after another.'),
    cfg.FloatOpt('scrub_rate_limit', default=0, min=0,
                 help='Store deletes per second across the whole pool, so '
                      'that a large scrub_pool_size cannot exceed the rate '
                      'limit of the backend; 0 means unlimited.'),
    cfg.IntOpt('wakeup_time', default=300, min=0,
               help='Seconds between two runs in daemon mode.'),
]
cli_opts = [
    cfg.BoolOpt('daemon', short='D', default=False,
                help='Run until stopped, scrubbing every wakeup_time '
                     'seconds, instead of once.'),
    cfg.StrOpt('restore', metavar='IMAGE_ID',
               help='Bring a pending_delete image back to active instead of '
                    'scrubbing.'),
]
CONF.register_opts(scrubber_opts)

# Locations fetched from the queue at a time.
BATCH_SIZE = 1000
# A claim older than this belongs to a scrubber that died mid-delete.
CLAIM_LEASE_SECONDS = 3600


def list_opts():
    return [('DEFAULT', scrubber_opts + cli_opts)]


class RateLimiter:
    """Spaces store deletes at least ``1 / per_second`` apart across all
    green threads of the pool (0 = no limit). Spacing is checked when a
    thread actually wakes, so threads held up together never burst."""

    def __init__(self, per_second):
        self.interval = 1.0 / per_second if per_second else 0
        self.last_start = float('-inf')

    def wait(self):
        if not self.interval:
            return
        while True:
            now = time.monotonic()
            ready = self.last_start + self.interval
            if now >= ready:
                self.last_start = now
                return
            eventlet.sleep(ready - now)


class RunReport:
    """What one run did, for its closing log line."""

    def __init__(self):
        self.started = time.monotonic()
        self.images = self.locations = self.failed = 0
        self.failed_ids = set()

    def log(self, left):
        LOG.info('Scrub run: %d images (%d locations) scrubbed, %d '
                 'locations failed, %d left waiting; %.1f s.', self.images,
                 self.locations, self.failed, left,
                 time.monotonic() - self.started)


class Scrubber:

    def __init__(self):
        self.pool = eventlet.GreenPool(CONF.scrub_pool_size)
        self.limiter = RateLimiter(CONF.scrub_rate_limit)
        self.name = '%s:%d' % (socket.gethostname(), os.getpid())

    def _stale_claims_before(self):
        return utcnow() - datetime.timedelta(seconds=CLAIM_LEASE_SECONDS)

    def _due(self, exclude):
        return db_api.pending_delete_locations(
            utcnow() - datetime.timedelta(seconds=CONF.scrub_time), BATCH_SIZE,
            self._stale_claims_before(), exclude)

    def run(self, stopping=lambda: False):
        """Scrub everything that is due, batch after batch, until done or
        ``stopping()``."""
        report = RunReport()
        batch = self._due(report.failed_ids)
        while batch and not stopping():
            for image_id, locations in _by_image(batch).items():
                # spawn_n waits for a free green thread: a stop requested
                # meanwhile leaves the rest of the batch alone.
                if stopping():
                    break
                self.pool.spawn_n(self._scrub_image, image_id, locations,
                                  report)
            self.pool.waitall()
            batch = self._due(report.failed_ids)
        db_api.finish_scrubbed_images()
        report.log(left=len(report.failed_ids))
        return report

    def _scrub_image(self, image_id, locations, report):
        scrubbed = 0
        for loc in locations:
            if self._scrub_location(image_id, loc, report):
                scrubbed += 1
        if scrubbed:
            report.locations += scrubbed
            if db_api.finish_scrubbed_images([image_id]):
                report.images += 1

    def _scrub_location(self, image_id, loc, report):
        if not db_api.claim_location(loc['id'], self.name,
                                     self._stale_claims_before()):
            return False
        self.limiter.wait()
        try:
            location.delete_data(None, loc)
        except Exception as e:
            LOG.error('Could not delete the data of image %s at location '
                      '%s; it stays pending_delete: %s', image_id,
                      loc['id'], e)
            report.failed += 1
            report.failed_ids.add(loc['id'])
            db_api.release_location(loc['id'], scrubbed=False)
            return False
        db_api.release_location(loc['id'], scrubbed=True)
        return True


def _by_image(locations):
    grouped = {}
    for loc in locations:
        grouped.setdefault(loc['image_id'], []).append(loc)
    return grouped


class Daemon:
    """Runs the scrubber every ``wakeup_time`` seconds until stopped; a stop
    lets the images in hand finish. A loop, not a recursion: it can run for
    years."""

    # Longest a stop request waits for a sleeping daemon to notice it.
    POLL_SECONDS = 0.5

    def __init__(self, scrubber):
        self.scrubber = scrubber
        self.stopped = False

    def stop(self, *_signal_args):
        self.stopped = True

    def _sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.stopped:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            eventlet.sleep(min(remaining, self.POLL_SECONDS))

    def serve(self, max_runs=None):
        runs = 0
        while not self.stopped and (max_runs is None or runs < max_runs):
            try:
                self.scrubber.run(stopping=lambda: self.stopped)
            except Exception as e:
                # A database or store outage must not end a daemon that
                # runs for days: report it and try again at next wake-up.
                LOG.error('Scrub run failed, retrying in %d s: %s',
                          CONF.wakeup_time, e)
            runs += 1
            self._sleep(CONF.wakeup_time)
        return runs


def restore(image_id):
    """Bring a pending_delete image back, if its data is still there."""
    waiting = db_api.pending_delete_locations(
        utcnow(), BATCH_SIZE, utcnow(), image_id=image_id)
    if waiting and not any(location.data_exists(loc)
                           for loc in waiting):
        raise exception.Conflict('the data of image %s is no longer in the '
                                 'store' % image_id)
    count = db_api.image_restore(image_id)
    LOG.info('Image %s restored to active with %d location(s).', image_id,
             count)
