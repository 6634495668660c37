"""The distinction layer on domain objects: ``change_set`` holds exactly
what changed since the snapshot, and ``ImageRepoProxy.save`` passes only
that down (nothing at all when nothing changed)."""

import copy

import pytest

from glance import distinction, domain


def _image(**overrides):
    values = {
        'image_id': '11111111-2222-3333-4444-555555555555',
        'status': 'active', 'created_at': None, 'updated_at': None,
        'name': 'before', 'visibility': 'private', 'protected': False,
        'os_hidden': False, 'min_disk': 1, 'min_ram': 2, 'owner': 'p1',
        'disk_format': 'raw', 'container_format': 'bare', 'size': 3,
        'virtual_size': None, 'checksum': 'c' * 32,
        'os_hash_algo': 'sha512', 'os_hash_value': 'h' * 128,
        'locations': [{'id': 7, 'url': 'file:///a', 'metadata': {},
                       'status': 'active'},
                      {'id': 8, 'url': 'file:///b', 'metadata': {'k': 'v'},
                       'status': 'active'}],
        'extra_properties': {'foo': 'bar', 'goo': 'far'},
        'tags': {'t1', 't2'}}
    values.update(overrides)
    return domain.Image(**values)


@pytest.fixture
def image():
    return _image()


@pytest.fixture
def before(image):
    return distinction._snapshot(image)


def test_unchanged_image_has_empty_change_set(image, before):
    assert distinction.change_set(before, image) == {}


def test_reassigning_same_values_is_no_change(image, before):
    image.name = 'before'
    image.extra_properties['foo'] = 'bar'
    image.tags = {'t2', 't1'}
    image.min_disk = 1
    image.locations = [dict(loc) for loc in image.locations]
    assert distinction.change_set(before, image) == {}


def test_remove_then_readd_same_property_is_no_change(image, before):
    del image.extra_properties['foo']
    image.extra_properties['foo'] = 'bar'
    assert distinction.change_set(before, image) == {}


@pytest.mark.parametrize('attribute,column,value', [
    ('name', 'name', 'after'),
    ('name', 'name', None),
    ('visibility', 'visibility', 'public'),
    ('protected', 'protected', True),
    ('os_hidden', 'os_hidden', True),
    ('min_disk', 'min_disk', 10),
    ('min_ram', 'min_ram', 0),
    ('owner', 'owner', 'p2'),
    ('size', 'size', 4),
    ('virtual_size', 'virtual_size', 5),
    ('checksum', 'checksum', 'd' * 32),
    ('os_hash_algo', 'os_hash_algo', 'sha256'),
    ('os_hash_value', 'os_hash_value', 'i' * 64),
])
def test_one_column_changed(image, before, attribute, column, value):
    setattr(image, attribute, value)
    assert distinction.change_set(before, image) == {
        'values': {column: value}}


def test_formats_map_to_their_columns():
    image = _image(status='queued')
    before = distinction._snapshot(image)
    image.disk_format = 'qcow2'
    assert distinction.change_set(before, image) == {
        'values': {'disk_format': 'qcow2'}}
    image = _image(status='queued')
    before = distinction._snapshot(image)
    image.container_format = 'ovf'
    assert distinction.change_set(before, image) == {
        'values': {'container_format': 'ovf'}}


def test_status_change_is_the_status_column(image, before):
    image.deactivate()
    assert distinction.change_set(before, image) == {
        'values': {'status': 'deactivated'}}


def test_several_columns_change_together(image, before):
    image.name = 'after'
    image.min_ram = 64
    assert distinction.change_set(before, image) == {
        'values': {'name': 'after', 'min_ram': 64}}


def test_property_added(image, before):
    image.extra_properties['new'] = 'value'
    assert distinction.change_set(before, image) == {
        'set_properties': {'new': 'value'}}


def test_property_changed(image, before):
    image.extra_properties['foo'] = 'baz'
    assert distinction.change_set(before, image) == {
        'set_properties': {'foo': 'baz'}}


def test_property_set_to_empty_string(image, before):
    image.extra_properties['foo'] = ''
    assert distinction.change_set(before, image) == {
        'set_properties': {'foo': ''}}


def test_property_removed(image, before):
    del image.extra_properties['goo']
    assert distinction.change_set(before, image) == {
        'delete_properties': ['goo']}


def test_properties_replaced_wholesale_only_diff(image, before):
    # A caller assigning a new dict (not mutating) still gets a per-key
    # diff, never "write them all".
    image.extra_properties = {'foo': 'bar', 'goo': 'yuck', 'x': '1'}
    assert distinction.change_set(before, image) == {
        'set_properties': {'goo': 'yuck', 'x': '1'}}


def test_all_properties_removed(image, before):
    image.extra_properties.clear()
    assert distinction.change_set(before, image) == {
        'delete_properties': ['foo', 'goo']}


def test_tag_added(image, before):
    image.tags.add('t3')
    assert distinction.change_set(before, image) == {'add_tags': ['t3']}


def test_tag_removed(image, before):
    image.tags.discard('t1')
    assert distinction.change_set(before, image) == {'remove_tags': ['t1']}


def test_tags_replaced(image, before):
    image.tags = {'t2', 'a', 'b'}
    assert distinction.change_set(before, image) == {
        'add_tags': ['a', 'b'], 'remove_tags': ['t1']}


def test_location_added(image, before):
    new = {'id': None, 'url': 'file:///c', 'metadata': {},
           'status': 'active'}
    image.locations.append(new)
    assert distinction.change_set(before, image) == {'add_locations': [new]}


def test_location_removed(image, before):
    gone = image.locations.pop(0)
    changes = distinction.change_set(before, image)
    assert list(changes) == ['delete_locations']
    assert [loc['id'] for loc in changes['delete_locations']] == [gone['id']]
    assert changes['delete_locations'][0]['url'] == gone['url']


def test_location_replaced(image, before):
    # Replacing a location is removing the old one and adding a new one.
    new = {'id': None, 'url': 'file:///z', 'metadata': {},
           'status': 'active'}
    old = image.locations[1]
    image.locations[1] = new
    changes = distinction.change_set(before, image)
    assert changes['add_locations'] == [new]
    assert [loc['id'] for loc in changes['delete_locations']] == [old['id']]
    assert set(changes) == {'add_locations', 'delete_locations'}


def test_snapshot_is_not_aliased_to_the_image(image, before):
    """Mutating the image in place must not change the snapshot."""
    saved = copy.deepcopy(before)
    image.extra_properties['foo'] = 'changed'
    image.tags.add('x')
    image.locations.pop()
    image.name = 'other'
    assert before == saved


def test_change_set_does_not_mutate_its_arguments(image, before):
    image.extra_properties['foo'] = 'baz'
    saved = copy.deepcopy(before)
    distinction.change_set(before, image)
    distinction.change_set(before, image)
    assert before == saved
    assert image.extra_properties == {'foo': 'baz', 'goo': 'far'}


def test_mixed_changes(image, before):
    image.name = 'after'
    image.extra_properties['foo'] = 'baz'
    image.extra_properties['new'] = 'n'
    del image.extra_properties['goo']
    image.tags = {'t1', 't3'}
    assert distinction.change_set(before, image) == {
        'values': {'name': 'after'},
        'set_properties': {'foo': 'baz', 'new': 'n'},
        'delete_properties': ['goo'],
        'add_tags': ['t3'],
        'remove_tags': ['t2'],
    }


# --- ImageRepoProxy over a fake repository ---------------------------------

class FakeRepo:

    def __init__(self, images):
        self.images = {image.image_id: image for image in images}
        self.applied = []
        self.added = []
        self.removed = []

    def get(self, image_id):
        return copy.deepcopy(self.images[image_id])

    def list(self, **query):
        return [copy.deepcopy(image) for image in self.images.values()]

    def add(self, image):
        self.added.append(image)

    def apply(self, image, changes, from_state=None):
        self.applied.append((copy.deepcopy(changes), from_state))

    def remove(self, image):
        self.removed.append(image)


@pytest.fixture
def fake():
    return FakeRepo([_image()])


@pytest.fixture
def proxy(fake):
    return distinction.ImageRepoProxy(fake)


def test_save_without_change_applies_nothing(fake, proxy):
    image = proxy.get(_image().image_id)
    proxy.save(image)
    assert fake.applied == []


def test_status_guard_is_checked_even_without_change(fake, proxy):
    """A copy read after another request moved the image to 'saving' sees
    its own move to 'saving' as no change; the guard from 'queued' must
    still reach the database, which refuses it."""
    image = proxy.get(_image().image_id)
    proxy.save(image, from_state='queued')
    assert fake.applied == [({}, 'queued')]


def test_save_passes_only_the_diff(fake, proxy):
    image = proxy.get(_image().image_id)
    image.extra_properties['goo'] = 'yuck'
    proxy.save(image)
    assert fake.applied == [({'set_properties': {'goo': 'yuck'}}, None)]


def test_save_passes_from_state(fake, proxy):
    image = proxy.get(_image().image_id)
    image.deactivate()
    proxy.save(image, from_state='active')
    assert fake.applied == [({'values': {'status': 'deactivated'}},
                             'active')]


def test_second_save_sends_only_what_changed_since_first(fake, proxy):
    image = proxy.get(_image().image_id)
    image.name = 'one'
    proxy.save(image)
    proxy.save(image)
    image.extra_properties['p'] = 'v'
    proxy.save(image)
    assert fake.applied == [({'values': {'name': 'one'}}, None),
                            ({'set_properties': {'p': 'v'}}, None)]


def test_images_from_list_are_diffed(fake, proxy):
    [image] = proxy.list()
    proxy.save(image)
    del image.extra_properties['foo']
    proxy.save(image)
    assert fake.applied == [({'delete_properties': ['foo']}, None)]


def test_added_image_is_diffed_on_later_saves(fake, proxy):
    image = _image(image_id='99999999-2222-3333-4444-555555555555')
    proxy.add(image)
    assert fake.added == [image]
    proxy.save(image)
    assert fake.applied == []
    image.tags.add('new')
    proxy.save(image)
    assert fake.applied == [({'add_tags': ['new']}, None)]


def test_two_readers_each_send_only_their_own_change(fake, proxy):
    """The spec's example: user1 and user2 read the same image; each save
    carries only that user's key, so neither undoes the other."""
    first = proxy.get(_image().image_id)
    second = proxy.get(_image().image_id)
    first.extra_properties['foo'] = 'baz'
    second.extra_properties['goo'] = 'yuck'
    proxy.save(first)
    proxy.save(second)
    assert fake.applied == [({'set_properties': {'foo': 'baz'}}, None),
                            ({'set_properties': {'goo': 'yuck'}}, None)]


def test_failed_apply_keeps_the_old_snapshot(fake, proxy):
    """If the write fails, the change is still pending: a retry of the save
    must send it again, not nothing."""
    image = proxy.get(_image().image_id)
    image.extra_properties['x'] = 'y'

    def failing(*args, **kwargs):
        raise RuntimeError('db down')

    fake.apply, real_apply = failing, fake.apply
    with pytest.raises(RuntimeError):
        proxy.save(image)
    fake.apply = real_apply
    proxy.save(image)
    assert fake.applied == [({'set_properties': {'x': 'y'}}, None)]


def test_remove_is_passed_through(fake, proxy):
    image = proxy.get(_image().image_id)
    proxy.remove(image)
    assert fake.removed == [image]
