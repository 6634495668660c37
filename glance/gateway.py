"""Every layer an image passes through, listed top to bottom in one place.

The API asks for a repository here and gets the whole chain:

    distinction   a save writes only what changed since the read
    quota         property, tag and location counts
    location      image data deleted (or left for the scrubber) with the image
    db.repo       domain objects <-> the DB API, the only code writing SQL

Policy is checked in the API handlers, before they call in.
"""

from glance.db import repo as db_repo
from glance import distinction
from glance import domain
from glance import location
from glance import quota


def image_repo(context):
    repo = db_repo.ImageRepo(context)
    repo = location.ImageRepoProxy(repo, context)
    repo = quota.ImageRepoProxy(repo)
    return distinction.ImageRepoProxy(repo)


def image_factory():
    return domain.ImageFactory()


def member_repo(image):
    return db_repo.MemberRepo(image)


def task_repo(context):
    return db_repo.TaskRepo(context)
