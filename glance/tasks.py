"""Background tasks: the thread pool that runs them, the lifecycle every
task goes through, and the work of each kind of task.

A request records a task (``pending``) and hands it to ``start``; a thread
of this worker process then moves it to ``processing`` and runs its work,
which ends the task in ``success`` (with a result) or ``failure`` (with a
message). Clients follow it with ``GET /v2/tasks/{id}`` or
``GET /v2/images/{id}/tasks``.
"""

from concurrent import futures
import datetime
import os
import threading

from oslo_config import cfg
from oslo_log import log as logging
import requests

from glance.common import exception
from glance import gateway
from glance import location

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 60

_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _executor():
    """This process's pool (a forked worker must not use its parent's)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = futures.ThreadPoolExecutor(
                CONF.wsgi.task_pool_threads, thread_name_prefix='task')
            _pool_pid = os.getpid()
        return _pool


def start(context, task, work):
    """Record ``task`` and run ``work(task)`` in the background; what work
    returns is the task's result, what it raises its failure."""
    gateway.task_repo(context).add(task)
    _executor().submit(_run, context, task, work)


def _run(context, task, work):
    repo = gateway.task_repo(context)
    time_to_live = datetime.timedelta(hours=CONF.task.task_time_to_live)
    try:
        task.begin_processing()
        repo.save(task, from_status='pending')
        result = work(task)
    except Exception as e:
        if isinstance(e, exception.GlanceError):
            LOG.info('Task %s failed: %s', task.task_id, e)
        else:
            LOG.exception('Task %s failed', task.task_id)
        status = task.status
        task.fail(e, time_to_live)
        _save_quietly(repo, task, status)
    else:
        task.succeed(result, time_to_live)
        _save_quietly(repo, task, 'processing')


def _save_quietly(repo, task, from_status):
    try:
        repo.save(task, from_status)
    except exception.GlanceError as e:
        LOG.warning('Cannot record the end of task %s: %s', task.task_id, e)


# --- location_import: POST /v2/images/{id}/locations ----------------------

def location_import(context, image_id, url, validation_data):
    """The work of adding ``url`` to an image the request moved to
    ``importing``.

    With ``do_secure_hash``, data given ``validation_data`` is hashed
    before the image becomes active and must match; without
    ``validation_data`` the image is active at once and its checksum and
    hash follow when the background read ends. A failure before the image
    is active puts it back to queued; a location already recorded stays,
    as upstream keeps http ones: glance did not write that data.
    """
    def work(task):
        repo = gateway.image_repo(context)
        image = repo.get(image_id)
        try:
            loc = _add_location(context, repo, image, url, validation_data)
        except Exception:
            _back_to_queued(repo, image_id)
            raise
        if CONF.do_secure_hash and not validation_data:
            _hash_active_image(context, repo, image, loc)
        return {'image_id': image_id}
    return work


def _add_location(context, repo, image, url, validation_data):
    loc, image.size = location.new_location(context, url)
    image.locations.append(loc)
    algo = validation_data.get('os_hash_algo')
    if CONF.do_secure_hash and validation_data:
        repo.save(image, from_state='importing')
        checksum, value = location.hash_location(context, image.image_id,
                                                 loc, algo)
        if value != validation_data['os_hash_value']:
            raise exception.Invalid(
                'os_hash_value %s does not match the data at the location, '
                'whose %s is %s.' % (validation_data['os_hash_value'], algo,
                                     value))
        image.checksum = checksum
    elif not validation_data:
        # Clients see which algorithm the coming hash uses at once.
        algo = CONF.hashing_algorithm if CONF.do_secure_hash else None
    image.os_hash_algo = algo
    image.os_hash_value = validation_data.get('os_hash_value')
    image.status = 'active'
    repo.save(image, from_state='importing')
    return loc


def _back_to_queued(repo, image_id):
    try:
        image = repo.get(image_id)
        image.status = 'queued'
        image.checksum = image.os_hash_algo = image.os_hash_value = None
        repo.save(image, from_state='importing')
    except exception.GlanceError as e:
        LOG.info('Image %s not put back to queued: %s', image_id, e)


def _hash_active_image(context, repo, image, loc):
    """Fill in checksum and os_hash_value; the image stays active without
    them if the data can't be read (``http_retries`` more attempts)."""
    for attempt in range(1, CONF.http_retries + 2):
        try:
            image.checksum, image.os_hash_value = location.hash_location(
                context, image.image_id, loc, image.os_hash_algo)
        except (location.StoreUnavailable, OSError) as e:
            LOG.warning('Hashing the data of image %s failed (attempt %d): '
                        '%s', image.image_id, attempt, e)
            continue
        repo.save(image)
        return
    LOG.warning('Image %s stays without checksum: its data could not be '
                'read.', image.image_id)


# --- import: POST /v2/tasks (the deprecated tasks-based import) -----------

def legacy_import(context, image, url):
    """The work of an ``import`` task: create ``image`` (checked by the
    request) and fill it with the data at ``url``, or delete it again."""
    def work(task):
        repo = gateway.image_repo(context)
        repo.add(image)
        try:
            _fetch_into(context, repo, image, url)
        except BaseException:
            image.protected = False
            image.delete(delayed_delete=False)
            repo.remove(image)
            raise
        return {'image_id': image.image_id}
    return work


def _fetch_into(context, repo, image, url):
    try:
        # Redirects are not followed: their target escaped the URL filter.
        response = requests.get(url, stream=True, allow_redirects=False,
                                timeout=FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException as e:
        raise exception.Invalid('Cannot fetch %s: %s' % (url, e))
    with response:
        if response.status_code != 200:
            raise exception.Invalid('Cannot fetch %s: HTTP %d'
                                    % (url, response.status_code))
        size = response.headers.get('Content-Length')
        image.status = 'saving'
        repo.save(image, from_state='queued')
        location.write_data(context, image, response.raw,
                            int(size) if size and size.isdigit() else None)
    image.status = 'active'
    repo.save(image, from_state='saving')
