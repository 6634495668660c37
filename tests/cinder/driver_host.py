"""The Cinder side of the tests, run in a process of its own.

Cinder and Glance both register ``enabled_backends`` (with other types)
on oslo.config's global CONF, and cinder's dependencies change
glance-api, so cinder lives in .venv-cinder and is never imported into a
pytest process: ``tests/cinder/conftest.py`` runs this module as
``python -m tests.cinder.driver_host`` there and calls its public
functions, one JSON line each way (``main``).

They build the real ``RBDCloneDriver`` the way Cinder's volume manager
does, minus services, database and message bus: a backend
``Configuration``, ``do_setup`` and ``check_for_setup_error`` against the
test's Ceph cluster, and real ``Volume`` objects whose RBD images the
tests make small (8 MiB) so that the stock copy path stays quick.

Glance is either this project's real glance-api (``glance_url``: the
driver's own Glance calls through cinder's glanceclient wrapper, and
cinder's real ``GlanceImageService``) or ``FakeGlance`` below, a
recording stand-in with the statuses Glance would report.
"""

import hashlib
import json
import os
import sys
import time
import traceback
import uuid

BACKEND = 'ceph'
STATE = {}


def start(ceph_conf, keyring, glance_url=None):
    """Build and set up the driver; once per process."""
    from cinder import context
    from cinder import objects
    from cinder.volume import configuration
    from cinder.volume import driver as volume_driver
    from cinder.volume.drivers import rbd
    from oslo_config import cfg

    from cinder_patches import rbd as clone_rbd

    cfg.CONF([], project='cinder', default_config_files=[])
    objects.register_all()
    conf = configuration.Configuration(volume_driver.volume_opts,
                                       config_group=BACKEND)
    conf.append_config_values(rbd.RBD_OPTS + clone_rbd.CLONE_OPTS)
    STATE['overrides'] = {
        'rbd_pool': 'volumes', 'rbd_ceph_conf': ceph_conf,
        'rbd_user': 'admin', 'rados_connect_timeout': 30,
        'rados_connection_retries': 1, 'rados_connection_interval': 1,
        'enable_clone_optimization': True}
    for name, value in STATE['overrides'].items():
        cfg.CONF.set_override(name, value, group=BACKEND)
    # os-brick's RBD handle (the stock copy path) needs the keyring.
    conf.rbd_keyring_conf = keyring
    drv = clone_rbd.RBDCloneDriver(configuration=conf, host='host@' + BACKEND)
    ctx = context.get_admin_context()
    drv.do_setup(ctx)
    drv.check_for_setup_error()
    STATE.update(driver=drv, rbd=drv.rbd, context=ctx, conf=conf)
    if glance_url:
        _use_real_glance(glance_url)
    return drv._get_fsid()


def configure(**options):
    """Backend options for the next calls (the others as start() set)."""
    from oslo_config import cfg

    values = dict(STATE['overrides'], **options)
    for name, value in values.items():
        cfg.CONF.set_override(name, value, group=BACKEND)


# --- volumes -------------------------------------------------------------

def new_volume(size_bytes=8 * 1024 * 1024, store_id=None, seed=None):
    """A Volume object and its RBD image filled with known bytes; returns
    (volume id, sha256 of the data)."""
    from cinder import objects
    from cinder.volume.drivers import rbd

    ctx = STATE['context']
    volume_id = str(uuid.uuid4())
    extra_specs = {'image_service:store_id': store_id} if store_id else {}
    volume = objects.Volume(
        context=ctx, id=volume_id, _name_id=None,
        size=max(1, -(-size_bytes // 1024 ** 3)),
        volume_type=objects.VolumeType(context=ctx, id=str(uuid.uuid4()),
                                       extra_specs=extra_specs),
        glance_metadata={}, encryption_key_id=None, use_quota=True,
        host='host@' + BACKEND)
    drv = STATE['driver']
    with rbd.RADOSClient(drv) as client:
        drv.RBDProxy().create(client.ioctx, volume.name, size_bytes,
                              old_format=False, features=client.features)
    digest = hashlib.sha256()
    with rbd.RBDVolumeProxy(drv, volume.name) as image:
        for offset, chunk in _pattern_chunks(size_bytes, seed or volume_id):
            image.write(chunk, offset)
            digest.update(chunk)
    STATE.setdefault('volumes', {})[volume_id] = volume
    return volume_id, digest.hexdigest()


def volume_name(volume_id):
    return STATE['volumes'][volume_id].name


def _pattern(size, seed):
    """The bytes new_volume writes for ``seed``."""
    return b''.join(chunk for _offset, chunk in _pattern_chunks(size, seed))


def _pattern_chunks(size, seed, chunk_size=8 * 1024 * 1024):
    block = hashlib.sha512(seed.encode()).digest() * 2048  # 128 KiB
    chunk = block * (chunk_size // len(block))
    for offset in range(0, size, chunk_size):
        yield offset, chunk[:min(chunk_size, size - offset)]


def delete_volume(volume_id):
    STATE['driver'].delete_volume(STATE['volumes'].pop(volume_id))


def volume_from_image(image_id, image_meta):
    """Create a volume from the image as Cinder does for RBD images: the
    driver's clone_image from the locations Glance reports. Returns the
    new volume's id, or None if the driver could not clone."""
    from cinder import objects

    ctx = STATE['context']
    image_service = STATE['image_service']
    volume = objects.Volume(
        context=ctx, id=str(uuid.uuid4()), _name_id=None, size=1,
        volume_type=objects.VolumeType(context=ctx, id=str(uuid.uuid4()),
                                       extra_specs={}),
        glance_metadata={}, encryption_key_id=None, use_quota=True)
    location = image_service.get_location(ctx, image_id)
    _update, cloned = STATE['driver'].clone_image(
        ctx, volume, location, image_meta, image_service)
    if not cloned:
        return None
    STATE['volumes'][volume.id] = volume
    return volume.id


# --- uploads -------------------------------------------------------------

def upload(volume_id, image_meta):
    """copy_volume_to_image as the volume manager calls it; returns the
    seconds it took."""
    began = time.monotonic()
    STATE['driver'].copy_volume_to_image(
        STATE['context'], STATE['volumes'][volume_id],
        STATE['image_service'], image_meta)
    return time.monotonic() - began


def collect_garbage():
    STATE['driver'].collect_garbage()


def run_periodic_tasks(seconds, interval):
    """Start the driver's periodic tasks anew (every ``interval`` s) and
    let them run for ``seconds`` in eventlet's hub, as in a volume
    service."""
    import eventlet

    configure(deferred_deletion_purge_interval=interval)
    STATE['driver']._start_periodic_tasks()
    eventlet.sleep(seconds)


def option_facts():
    """How enable_clone_optimization is registered."""
    from cinder.volume import configuration
    from oslo_config import cfg

    from cinder_patches import rbd

    shared = cfg.CONF[configuration.SHARED_CONF_GROUP]
    option = [o for o in rbd.RBDCloneDriver.get_driver_options()
              if o.name == 'enable_clone_optimization']
    return {'listed': len(option), 'help': option[0].help,
            'shared_default': shared.enable_clone_optimization,
            'backend_value': STATE['conf'].enable_clone_optimization,
            'rbd_options_listed': 'rbd_pool' in {
                o.name for o in rbd.RBDCloneDriver.get_driver_options()}}


def use_fake_glance(stores, **behaviour):
    """FakeGlance as the driver's Glance and the image service."""
    fake = FakeGlance(stores, **behaviour)
    STATE['driver'].glance = fake
    STATE['image_service'] = fake


def fake_glance_image(image_id):
    return STATE['image_service'].images.get(image_id)


def set_location_timeout(seconds):
    STATE['driver'].LOCATION_TIMEOUT = seconds


class FakeGlance:
    """Glance as the driver and the volume manager see it, in memory.

    ``api`` is ``post`` (v2.17: active in the background, here at the
    next show) or ``legacy`` (JSON patch: active at once, with the
    validation data the driver sends). ``refuse`` makes the location call
    fail; ``revert`` makes Glance put the image back to queued; ``stuck``
    keeps it importing; ``vanish`` deletes it meanwhile (show: not found);
    ``stores_error`` fails the stores lookup.
    """

    def __init__(self, stores, api='post', refuse=False, revert=False,
                 stuck=False, vanish=False, stores_error=False):
        self.store_list = stores
        self.api = api
        self.refuse = refuse
        self.revert = revert
        self.stuck = stuck
        self.vanish = vanish
        self.stores_error = stores_error
        self.images = {}

    def _image(self, image_id):
        return self.images.setdefault(image_id, {'status': 'queued'})

    def stores(self, context):
        if self.stores_error:
            raise RuntimeError('403 Forbidden')
        return self.store_list

    def add_location(self, context, image_id, url, validation_data):
        image = self._image(image_id)
        if self.refuse:
            raise RuntimeError('409 Conflict')
        image['location'] = url
        if self.api == 'legacy':
            image.update(validation_data(), status='active')
            return False
        image['status'] = 'importing'
        return True

    def show(self, context, image_id):
        image = self._image(image_id)
        if self.vanish and image['status'] == 'importing':
            from cinder import exception
            image['status'] = 'deleted'
            raise exception.ImageNotFound(image_id=image_id)
        if image['status'] == 'importing' and not self.stuck:
            if self.revert:
                image.pop('location')
                image['status'] = 'queued'
            else:
                image['status'] = 'active'
        return dict(image)

    def get_location(self, context, image_id):
        url = self._image(image_id)['location']
        return url, [{'url': url, 'metadata': {}}]

    def update(self, context, image_id, image_meta, data=None,
               purge_props=True, store_id=None, base_image_ref=None):
        digest = hashlib.sha256()
        for chunk in iter(lambda: data.read(1024 * 1024), b''):
            digest.update(chunk)
        self._image(image_id).update(status='active', copied=True,
                                     sha256=digest.hexdigest(),
                                     store_id=store_id)
        return dict(self._image(image_id))

    def delete(self, context, image_id):
        self._image(image_id)['status'] = 'deleted'
        return True


# --- failure injection ---------------------------------------------------

def fail_at(operation):
    """Make the driver's librbd calls raise at ``operation`` (e.g.
    ``clone``, ``protect_snap:snap``), until fail_at(None)."""
    real = STATE['rbd']
    STATE['driver'].rbd = real if operation is None else _FailingRBD(
        real, operation)


class _FailingRBD:
    """The rbd module, but one operation raises rbd.IOError."""

    def __init__(self, real, operation):
        self._real = real
        self._operation = operation

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _check(self, name, *args):
        wanted, _sep, arg = self._operation.partition(':')
        if name == wanted and (not arg or arg in args):
            raise self._real.IOError('injected failure at %s' %
                                     self._operation)

    def RBD(self):
        return _Failing(self._real.RBD(), self._check)

    def Image(self, *args, **kwargs):
        return _Failing(self._real.Image(*args, **kwargs), self._check)


class _Failing:

    def __init__(self, target, check):
        self._target = target
        self._check = check

    def __getattr__(self, name):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self._check(name, *[a for a in args if isinstance(a, str)])
            return attribute(*args, **kwargs)
        return call


# --- real glance-api -----------------------------------------------------

def _use_real_glance(url):
    """Cinder's own Glance client against glance-api's no-auth pipeline:
    the context's auth plugin sends the identity headers it trusts (the
    service role, as Cinder's service user has)."""
    from cinder.image import glance
    from keystoneauth1 import plugin
    from oslo_config import cfg

    class HeaderIdentity(plugin.BaseAuthPlugin):
        def get_headers(self, session, **kwargs):
            return {'X-Roles': 'admin,member,reader,service',
                    'X-Project-Id': 'cinder-tests', 'X-User-Id': 'cinder'}

    cfg.CONF.set_override('glance_api_servers', [url])
    cfg.CONF.set_override('auth_strategy', 'keystone')
    ctx = STATE['context']
    ctx.user_auth_plugin = HeaderIdentity()
    ctx.project_id = 'cinder-tests'
    STATE['image_service'] = glance.GlanceImageService()


def use_location_api_of_glance():
    """The driver's own Glance client again (after the legacy one)."""
    from cinder_patches import glance

    STATE['driver'].glance = glance.GlanceLocations()


def use_legacy_location_api():
    """Make the driver's Glance client behave as against a Glance without
    v2.17: glanceclient raises HTTPNotImplemented before sending."""
    import glanceclient.exc

    from cinder_patches import glance

    class LegacyOnly(glance.GlanceLocations):
        def add_location(self, context, image_id, url, validation_data):
            from unittest import mock
            with mock.patch('glanceclient.v2.images.Controller.'
                            'add_image_location',
                            side_effect=glanceclient.exc.HTTPNotImplemented):
                return super().add_location(context, image_id, url,
                                            validation_data)

    STATE['driver'].glance = LegacyOnly()


def main():
    """Answer the calls read from stdin on the original stdout; whatever
    else is printed goes to stderr."""
    replies = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            function = globals()[request['call']]
            if request['call'].startswith('_'):
                raise KeyError(request['call'])
            reply = {'result': function(*request['args'],
                                        **request['kwargs'])}
        except Exception as e:
            reply = {'error': {
                'type': '%s.%s' % (type(e).__module__, type(e).__qualname__),
                'message': str(e), 'traceback': traceback.format_exc()}}
        replies.write(json.dumps(reply) + '\n')
        replies.flush()


if __name__ == '__main__':
    main()
