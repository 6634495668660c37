"""Print constraints.txt: exact versions of what the requirement files need.

    .venv/bin/python tools/freeze_constraints.py > constraints.txt

Walks requirements.txt and test-requirements.txt through the installed
distributions' own requirements (with the environment's markers), so that
packages installed by hand for an experiment don't get pinned.
"""

import os
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ['requirements.txt', 'test-requirements.txt']
# The venv's own tools: whatever python3 -m venv brought is fine.
UNPINNED = {'pip', 'setuptools', 'wheel'}


def read_requirements(path):
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                yield Requirement(line)


def wanted(requirement, extras):
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(requirement.marker.evaluate(dict(environment, extra=extra))
               for extra in (extras or {''}))


def closure(roots):
    versions = {}
    done = set()
    stack = [(r, frozenset(r.extras)) for r in roots]
    while stack:
        requirement, extras = stack.pop()
        key = (canonicalize_name(requirement.name), extras)
        if key in done:
            continue
        done.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit('%s is not installed' % requirement)
        versions[dist.metadata['Name']] = dist.version
        for text in dist.requires or []:
            child = Requirement(text)
            if wanted(child, extras):
                stack.append((child, frozenset(child.extras)))
    return versions


def main():
    roots = [r for name in FILES
             for r in read_requirements(os.path.join(REPO_ROOT, name))
             if wanted(r, frozenset())]
    print('# Exact versions the test suite passed with (Python 3.11); made by')
    print('# tools/freeze_constraints.py. Install with -c constraints.txt.')
    for name, version in sorted(closure(roots).items(),
                                key=lambda item: item[0].lower()):
        if canonicalize_name(name) not in UNPINNED:
            print('%s==%s' % (name, version))


if __name__ == '__main__':
    main()
