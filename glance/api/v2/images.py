"""Images: create, list, show, JSON-patch update, delete, (de)activate."""

import csv
import hashlib
import urllib.parse

from oslo_config import cfg
from oslo_utils import timeutils
import webob.exc

from glance.api import common
from glance.api.v2 import schemas
from glance.common import exception
from glance import domain
from glance import gateway
from glance import location
from glance import stores
from glance import policy

CONF = cfg.CONF

SORT_KEYS = ('name', 'status', 'container_format', 'disk_format', 'size',
             'id', 'created_at', 'updated_at')
# Filters that take an operator prefix (``in:a,b`` or ``eq:a``).
OPERATOR_FILTERS = ('name', 'id', 'status', 'container_format', 'disk_format')
TIME_FILTERS = ('created_at', 'updated_at')
TIME_OPERATORS = ('gt', 'gte', 'lt', 'lte', 'eq', 'neq')
BOOLEAN_FILTERS = ('protected', 'os_hidden')
INTEGER_FILTERS = ('min_ram', 'min_disk', 'size', 'virtual_size')
LIST_PARAMETERS = ('limit', 'marker', 'sort_key', 'sort_dir', 'sort',
                   'visibility', 'member_status', 'tag')
HIDDEN_PROPERTIES = ('os_glance_stage_host', 'os_glance_hash_op_host')
WRITABLE_ATTRIBUTES = ('name', 'visibility', 'protected', 'os_hidden',
                       'min_ram', 'min_disk', 'container_format',
                       'disk_format', 'owner', 'tags')
PATCH_MEDIA_TYPES = {
    'application/openstack-images-v2.1-json-patch': 'v2.1',
    'application/openstack-images-v2.0-json-patch': 'v2.0',
}


# --- views ------------------------------------------------------------------

def timestamp(value):
    """A naive UTC datetime as the API shows it, 2026-11-22T12:00:00Z."""
    # isoformat: several times cheaper than strftime, twice per image shown.
    return value.isoformat(timespec='seconds') + 'Z' if value else None


def image_view(image):
    view = {k: ('' if v is None else v)
            for k, v in image.extra_properties.items()
            if k not in HIDDEN_PROPERTIES}
    path = '/v2/images/%s' % image.image_id
    view.update(
        id=image.image_id, name=image.name, status=image.status,
        visibility=image.visibility, protected=image.protected,
        os_hidden=image.os_hidden, checksum=image.checksum,
        os_hash_algo=image.os_hash_algo, os_hash_value=image.os_hash_value,
        owner=image.owner, size=image.size, virtual_size=image.virtual_size,
        container_format=image.container_format,
        disk_format=image.disk_format, min_ram=image.min_ram,
        min_disk=image.min_disk, tags=sorted(image.tags),
        created_at=timestamp(image.created_at),
        updated_at=timestamp(image.updated_at),
        self=path, file=path + '/file', schema='/v2/schemas/image')
    locations = image.active_locations
    if CONF.show_image_direct_url and locations:
        view['direct_url'] = locations[0]['url']
    if CONF.show_multiple_locations:
        view['locations'] = [{'url': loc['url'], 'metadata': loc['metadata']}
                             for loc in locations]
    if stores.multi_store():
        store_ids = [loc['metadata']['store'] for loc in locations
                     if loc['metadata'].get('store')]
        if store_ids:
            view['stores'] = ','.join(store_ids)
    return view


# --- input checks -----------------------------------------------------------

def _check_text(value, what):
    """Strings the DB (MySQL utf8) can store: no 4-byte characters, and no
    lone surrogates (JSON lets a client send "\ud800")."""
    if not isinstance(value, str):
        return
    if any(ord(c) > 0xFFFF for c in value):
        raise exception.Invalid("%s can't contain 4 byte unicode characters."
                                % what)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise exception.Invalid('%s contains an unpaired surrogate.' % what)


def _check_attribute(name, value):
    _check_text(name, 'Property name')
    if len(name) > 255:
        raise exception.Invalid('Property name %r... is longer than 255 '
                                'characters.' % name[:20])
    for item in value if isinstance(value, list) else [value]:
        _check_text(item, 'Value of %s' % name)
    if name in ('min_ram', 'min_disk') and isinstance(value, int) and (
            not 0 <= value <= domain.MAX_INT32):
        raise exception.Invalid('%s must be between 0 and %d.'
                                % (name, domain.MAX_INT32))


def _refuse_unsettable(name):
    if name in domain.READONLY_ATTRIBUTES or name in ('os_hash_algo',
                                                      'os_hash_value'):
        raise exception.Forbidden("Attribute '%s' is read-only." % name)
    if name not in WRITABLE_ATTRIBUTES and domain.is_reserved(name):
        raise exception.Forbidden("Attribute '%s' is reserved." % name)


def _authorize_visibility(ctx, image_or_target, visibility):
    rule = {'public': 'publicize_image',
            'community': 'communitize_image'}.get(visibility)
    if rule:
        policy.authorize(ctx, rule, image_or_target)


# --- create -----------------------------------------------------------------

def new_image(ctx, body):
    """An image made from a create request's body (not yet saved), after
    checking it and the caller's right to create it."""
    for name, value in body.items():
        if name != 'id':
            _refuse_unsettable(name)
        _check_attribute(name, value)
    schemas.validate('image', body)
    owner = body.pop('owner', None) or ctx.project_id
    target = policy.image_target({'owner': owner, 'visibility':
                                  body.get('visibility', 'shared')})
    policy.authorize(ctx, 'add_image', target)
    if owner != ctx.project_id and not ctx.is_admin:
        raise exception.Forbidden("You are not permitted to create images "
                                  "owned by '%s'." % owner)
    _authorize_visibility(ctx, target, body.get('visibility'))
    image_id = body.pop('id', None)
    tags = body.pop('tags', None) or []
    base = {k: body.pop(k) for k in WRITABLE_ATTRIBUTES if k in body}
    return gateway.image_factory().new_image(
        owner=owner, image_id=image_id, extra_properties=body,
        tags=set(tags), **base)


def create(req):
    ctx = common.context(req)
    image = new_image(ctx, common.json_body(req))
    gateway.image_repo(ctx).add(image)
    headers = {'Location': '%s/v2/images/%s' % (req.host_url,
                                                image.image_id)}
    if stores.multi_store():
        headers['OpenStack-image-store-ids'] = ','.join(
            entry['id'] for entry in stores.listing())
    return common.json_response(image_view(image), status=201,
                                headers=headers)


# --- list -------------------------------------------------------------------

def _split_list(text):
    """``a,b,"c,d"`` -> ['a', 'b', 'c,d']."""
    try:
        return next(csv.reader([text], skipinitialspace=True))
    except (csv.Error, StopIteration):
        raise exception.Invalid('Invalid list value %r.' % text)


def _operator_filter(name, raw):
    op, sep, operand = raw.partition(':')
    if not sep:
        return ('eq', raw)
    if op not in ('in', 'eq'):
        raise exception.Invalid("Unable to filter by unknown operator '%s'."
                                % op)
    return ('in', _split_list(operand)) if op == 'in' else ('eq', operand)


def _time_filter(name, raw):
    op, sep, value = raw.partition(':')
    if not sep or op not in TIME_OPERATORS:
        op, value = 'eq', raw
    try:
        moment = timeutils.normalize_time(timeutils.parse_isotime(value))
    except ValueError:
        raise exception.Invalid('Unable to filter on a %s of %r: not an '
                                'ISO 8601 time.' % (name, raw))
    return (op, moment)


def _boolean(name, raw):
    value = raw.strip().lower()
    if value not in ('true', 'false'):
        raise exception.Invalid('Invalid value for %s: %r (expected true '
                                'or false).' % (name, raw))
    return value == 'true'


def _integer(name, raw):
    try:
        value = int(raw)
    except ValueError:
        raise exception.Invalid('Invalid value for %s: %r is not an integer.'
                                % (name, raw))
    if not -2 ** 63 <= value < 2 ** 63:
        raise exception.Invalid('Invalid value for %s: out of range.' % name)
    return value


def _parse_filters(params):
    filters = {'os_hidden': ('eq', False)}
    for name, raw in params.items():
        if name in LIST_PARAMETERS:
            continue
        _check_text(raw, 'Filter %s' % name)
        if name == 'changes-since':
            raise exception.Invalid('The "changes-since" filter is no longer '
                                    'available on v2.')
        if name in OPERATOR_FILTERS:
            filters[name] = _operator_filter(name, raw)
        elif name in TIME_FILTERS:
            filters[name] = _time_filter(name, raw)
        elif name in BOOLEAN_FILTERS:
            filters[name] = ('eq', _boolean(name, raw))
        elif name in INTEGER_FILTERS:
            filters[name] = ('eq', _integer(name, raw))
        elif name.endswith(('_min', '_max')) and name[:-4] in INTEGER_FILTERS:
            filters[name] = ('eq', _integer(name, raw))
        else:
            filters[name] = ('eq', raw)
    return filters


def _parse_sort(params):
    keys, dirs = params.getall('sort_key'), params.getall('sort_dir')
    if 'sort' in params:
        if keys or dirs:
            raise exception.Invalid('The "sort" parameter cannot be combined '
                                    'with sort_key or sort_dir.')
        keys, dirs = [], []
        for item in params['sort'].split(','):
            key, _, direction = item.strip().partition(':')
            keys.append(key.strip())
            dirs.append(direction.strip() or 'desc')
    keys = keys or ['created_at']
    if len(dirs) <= 1:
        dirs = dirs * len(keys) or ['desc'] * len(keys)
    if len(dirs) != len(keys):
        raise exception.Invalid('The number of sort_dir values must be one '
                                'or match the number of sort_key values.')
    for key in keys:
        if key not in SORT_KEYS:
            raise exception.Invalid('Invalid sort key: %s. It should be one '
                                    'of: %s.' % (key, ', '.join(SORT_KEYS)))
    for direction in dirs:
        if direction not in ('asc', 'desc'):
            raise exception.Invalid('Invalid sort direction: %s.' % direction)
    return keys, dirs


def parse_limit(params):
    if 'limit' not in params:
        return CONF.limit_param_default
    limit = _integer('limit', params['limit'])
    if limit < 0:
        raise exception.Invalid('limit param must be positive')
    return min(limit, CONF.api_limit_max)


def _choice(params, name, choices, default):
    value = params.get(name, default)
    if value not in choices:
        raise exception.Invalid('Invalid %s value: %s.' % (name, value))
    return value


def _page_links(req, images, limit):
    query = urllib.parse.urlencode(
        [(k, v) for k, v in req.GET.items() if k != 'marker'])
    links = {'first': '/v2/images' + ('?' + query if query else ''),
             'schema': '/v2/schemas/images'}
    if images and len(images) == limit:
        links['next'] = '/v2/images?%s' % '&'.join(
            filter(None, [query, 'marker=%s' % images[-1].image_id]))
    return links


@common.no_body
def index(req):
    ctx = common.context(req)
    policy.authorize(ctx, 'get_images', {'project_id': ctx.project_id})
    params = req.GET
    keys, dirs = _parse_sort(params)
    limit = parse_limit(params)
    visibility = _choice(params, 'visibility', ('public', 'private',
                                                'shared', 'community', 'all',
                                                None), None)
    member_status = _choice(params, 'member_status', (
        'pending', 'accepted', 'rejected', 'all'), 'accepted')
    tags = params.getall('tag')
    for tag in tags:
        _check_text(tag, 'Tag')
    try:
        images = gateway.image_repo(ctx).list(
            filters=_parse_filters(params), tags=tags, visibility=visibility,
            member_status='any' if member_status == 'all' else member_status,
            marker=params.get('marker'), limit=limit, sort_keys=keys,
            sort_dirs=dirs)
    except exception.ImageNotFound:
        raise exception.Invalid('Invalid marker. Image %s could not be '
                                'found.' % params.get('marker'))
    page_creds = policy.creds(ctx)
    images = [i for i in images if policy.check(
        page_creds, 'get_image', common.policy_target(i))]
    body = {'images': [image_view(i) for i in images]}
    body.update(_page_links(req, images, limit))
    return common.json_response(body)


# --- show, delete, actions --------------------------------------------------

@common.no_body
def show(req, image_id):
    _repo, image = common.find_image(req, image_id)
    return common.json_response(image_view(image))


@common.no_body
def delete(req, image_id):
    repo, image = common.find_image(req, image_id, 'delete_image')
    try:
        image.delete(CONF.delayed_delete)
    except domain.InvalidStatusTransition as e:
        raise exception.Invalid(e.msg)
    repo.remove(image)
    return common.no_content()


@common.no_body
def delete_from_store(req, store_id, image_id):
    """Delete the image's data in one store; it keeps its other ones."""
    stores.require_multi_store()
    try:
        stores.check_store_id(store_id)
    except exception.Invalid:
        raise exception.Conflict('Unknown store %s.' % store_id)
    repo, image = common.find_image(req, image_id, 'get_image_location')
    policy.authorize(common.context(req), 'delete_image_location',
                     common.policy_target(image))
    if image.status != 'active':
        raise exception.Conflict('It is not allowed to remove image data '
                                 'from store if image status is not '
                                 'active')
    held = [loc for loc in image.active_locations
            if loc['metadata'].get('store') == store_id]
    if not held:
        raise exception.NotFound('Image %s has no data in store %s.'
                                 % (image_id, store_id))
    if len(held) == len(image.active_locations):
        raise exception.Forbidden('Cannot delete image data from the only '
                                  'store containing it. Consider deleting '
                                  'the image instead.')
    for loc in held:
        image.locations.remove(loc)
    repo.save(image)
    return common.no_content()


def _switch(req, image_id, action, from_state):
    """Deactivate or reactivate; already there is a no-op 204."""
    repo, image = common.find_image(req, image_id, action)
    if image.status == from_state or image.status not in (
            'active', 'deactivated'):
        getattr(image, action)()  # refuses statuses it can't leave (403)
        repo.save(image, from_state=from_state)
    return common.no_content()


@common.no_body
def deactivate(req, image_id):
    return _switch(req, image_id, 'deactivate', 'active')


@common.no_body
def reactivate(req, image_id):
    return _switch(req, image_id, 'reactivate', 'deactivated')


# --- update (JSON-patch) ----------------------------------------------------

def _decode_pointer(path):
    """'/a~1b' -> ['a/b']; 400 for paths JSON-pointer doesn't allow."""
    if not isinstance(path, str) or not path.startswith('/') or (
            path.endswith('/') and path != '/'):
        raise exception.Invalid('Json path should start with a \'/\', end '
                                'with no \'/\', no 2 subsequent \'/\' are '
                                'allowed.')
    parts = path[1:].split('/')
    for part in parts:
        if not part or '~' in part.replace('~0', '').replace('~1', ''):
            raise exception.Invalid('Pointer `%s` is not a valid JSON '
                                    'pointer.' % path)
    return [p.replace('~1', '/').replace('~0', '~') for p in parts]


def _parse_operation(raw, dialect):
    """One patch operation as (op, name, value)."""
    if not isinstance(raw, dict):
        raise exception.Invalid('Operations must be JSON objects.')
    if dialect == 'v2.1':
        op, path = raw.get('op'), raw.get('path')
    else:
        ops = [k for k in ('add', 'replace', 'remove') if k in raw]
        if len(ops) != 1:
            raise exception.Invalid('Operation objects must contain exactly '
                                    'one member named "add", "remove", or '
                                    '"replace".')
        op, path = ops[0], raw[ops[0]]
    if op not in ('add', 'replace', 'remove'):
        raise exception.Invalid('Operation objects must contain a valid '
                                '"op": add, replace or remove.')
    if path is None:
        raise exception.Invalid('Unable to find `path` in operation.')
    parts = _decode_pointer(path)
    if op != 'remove' and 'value' not in raw:
        raise exception.Invalid('Operation "%s" requires a member named '
                                '"value".' % op)
    if parts[0] == 'locations':
        if len(parts) != (1 if op == 'replace' else 2):
            raise exception.Invalid('Invalid path for locations: %s' % path)
    elif len(parts) != 1:
        raise exception.Invalid('Nested paths are not allowed.')
    return op, parts, raw.get('value')


def _location_index(parts, count, op):
    """Position named by ``/locations/<n|->``."""
    if parts[1] == '-' and op == 'add':
        return count
    if not parts[1].isdigit() or int(parts[1]) > count - (op == 'remove'):
        raise exception.Invalid('Invalid location index %s.' % parts[1])
    return int(parts[1])


def _new_location(ctx, image, value):
    schemas.validate('image', {'locations': [value]})
    url = value['url']
    if any(loc['url'] == url for loc in image.active_locations):
        raise exception.Invalid('Invalid location: %s is already a location '
                                'of this image.' % url)
    loc, size = location.new_location(ctx, url, value['metadata'])
    if image.size is None:
        image.size = size
    return loc


def _hex_size(value):
    """Bytes a hex string encodes, None if it is not one."""
    try:
        return len(bytes.fromhex(value))
    except (TypeError, ValueError):
        return None


def _validation_values(image, values):
    """checksum/os_hash_* the locations' validation_data give the image.

    As upstream: a value equal to the image's changes nothing, a different
    one is a conflict (409), and new values may only be given while the
    image is queued, hashed with ``hashing_algorithm``.
    """
    given = {}
    for value in values:
        for key, item in (value.get('validation_data') or {}).items():
            if given.setdefault(key, item) != item:
                raise exception.Conflict('Conflicting values for %s' % key)
    new = {}
    for key, item in given.items():
        current = getattr(image, key)
        if current and current != item:
            raise exception.Conflict('%s is already set with a different '
                                     'value' % key)
        if item != current:
            new[key] = item
    if not new:
        return {}
    if image.status != 'queued':
        raise exception.Conflict("New value(s) for %s may only be provided "
                                 "when image status is 'queued'"
                                 % ', '.join(sorted(new)))
    if 'checksum' in new and _hex_size(new['checksum']) != 16:
        raise exception.Conflict('checksum (%s) is not a valid md5 '
                                 'checksum' % new['checksum'])
    algo = new.get('os_hash_algo')
    if algo != CONF.hashing_algorithm:
        raise exception.Conflict('os_hash_algo must be %s, not %s'
                                 % (CONF.hashing_algorithm, algo))
    if _hex_size(new.get('os_hash_value')) != hashlib.new(algo).digest_size:
        raise exception.Conflict('os_hash_value (%s) is not a valid %s hash'
                                 % (new.get('os_hash_value'), algo))
    return new


def _replace_locations(ctx, image, values):
    """Only the metadata of the current locations may change, unless there
    are none yet."""
    current = image.active_locations
    if not current:
        image.locations.extend(_new_location(ctx, image, v) for v in values)
        return
    if sorted(v['url'] for v in values) != sorted(loc['url']
                                                  for loc in current):
        raise exception.Invalid('Replacing locations is only allowed with '
                                'the same URLs.')
    metadata = {v['url']: v['metadata'] for v in values}
    for loc in current:
        # The store holding the data is not the client's to change.
        store = {'store': loc['metadata']['store']} if (
            'store' in loc['metadata']) else {}
        loc['metadata'] = {**metadata[loc['url']], **store}


def _change_locations(ctx, image, op, parts, value):
    """JSON-patch on ``/locations``; the store layer retires removed ones
    when the image is saved."""
    if not CONF.show_multiple_locations:
        raise exception.Forbidden("It's not allowed to add/update/remove "
                                  "locations if locations are invisible.")
    target = common.policy_target(image)
    current = image.active_locations
    if op == 'remove':
        policy.authorize(ctx, 'delete_image_location', target)
        if image.status != 'active':
            raise exception.Conflict('Locations can only be removed from an '
                                     'active image.')
        if len(current) == 1:
            raise exception.Forbidden('Cannot remove last location in the '
                                      'image.')
        image.locations.remove(current[_location_index(parts, len(current),
                                                       op)])
        return
    policy.authorize(ctx, 'set_image_location', target)
    if image.status not in ('active', 'queued'):
        raise exception.Conflict('Locations can only be set on a queued or '
                                 'active image.')
    values = value if op == 'replace' else [value]
    if not isinstance(values, list):
        raise exception.Invalid('Locations must be replaced with a list.')
    schemas.validate('image', {'locations': values})
    new_values = _validation_values(image, values)
    if op == 'replace':
        _replace_locations(ctx, image, value)
    else:
        index = _location_index(parts, len(current), op)
        image.locations.insert(index, _new_location(ctx, image, value))
    if image.status == 'queued' and image.active_locations:
        for key, item in new_values.items():
            setattr(image, key, item)
        image.status = 'active'


def _apply_operation(ctx, image, op, name, value, dialect):
    _refuse_unsettable(name)
    _check_attribute(name, value)
    if name in WRITABLE_ATTRIBUTES:
        if op == 'remove':
            raise exception.Forbidden('Property %s may not be removed.'
                                      % name)
        schemas.validate('image', {name: value})
        if name == 'owner' and not ctx.is_admin and value != image.owner:
            raise exception.Forbidden('Owner can only be changed by an '
                                      'administrator.')
        if name == 'visibility':
            _authorize_visibility(ctx, common.policy_target(image), value)
        setattr(image, name, set(value) if name == 'tags' else value)
        return
    props = image.extra_properties
    if op == 'remove':
        if name not in props:
            raise exception.Conflict('Property %s does not exist.' % name)
        del props[name]
        return
    if op == 'replace' and name not in props:
        raise exception.Conflict('Property %s does not exist.' % name)
    if op == 'add' and dialect == 'v2.0' and name in props:
        raise exception.Conflict('Property %s already present.' % name)
    schemas.validate('image', {name: value})
    props[name] = value


def update(req, image_id):
    dialect = PATCH_MEDIA_TYPES.get(req.content_type)
    if dialect is None:
        raise webob.exc.HTTPUnsupportedMediaType(
            explanation='Unsupported Content-Type',
            headers=[('Accept-Patch', ', '.join(sorted(PATCH_MEDIA_TYPES,
                                                       reverse=True)))])
    operations = [_parse_operation(raw, dialect)
                  for raw in common.json_body(req, expected=list)]
    ctx = common.context(req)
    repo, image = common.find_image(req, image_id, 'modify_image')
    for op, parts, value in operations:
        if parts[0] == 'locations':
            _change_locations(ctx, image, op, parts, value)
        else:
            _apply_operation(ctx, image, op, parts[0], value, dialect)
    repo.save(image)
    return common.json_response(image_view(image))
