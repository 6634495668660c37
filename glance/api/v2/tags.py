"""Image tags: ``PUT`` and ``DELETE /v2/images/{id}/tags/{tag}``."""

from glance.api import common
from glance.common import exception


@common.no_body
def add(req, image_id, tag):
    if len(tag) > 255:
        raise exception.Invalid('Tag is longer than 255 characters.')
    repo, image = common.find_image(req, image_id, 'modify_image')
    image.tags.add(tag)
    repo.save(image)
    return common.no_content()


@common.no_body
def delete(req, image_id, tag):
    repo, image = common.find_image(req, image_id, 'modify_image')
    if tag not in image.tags:
        raise exception.NotFound('Tag %s not found.' % tag)
    image.tags.discard(tag)
    repo.save(image)
    return common.no_content()
