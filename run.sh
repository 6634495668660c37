#!/usr/bin/env bash
# The two ways to use this checkout (see README.rst):
#
#   ./run.sh serve [glance-api options]
#       glance-api on http://127.0.0.1:9292: SQLite database and filesystem
#       store under .glance-data/, no authentication. The first run creates
#       .venv and .glance-data/glance-api.conf; later runs reuse them (edit
#       the config freely) and apply any new database migration.
#
#   ./run.sh test [pytest arguments]
#       the whole test suite (pytest tests), with the test requirements in
#       .venv. Real MariaDB and PostgreSQL servers are started for the tests
#       that need them (../shared/db/micro-db.sh, or $GLANCE_SHARED_DIR/db),
#       and a real Ceph cluster for the RBD tests (../shared/ceph), whose
#       Python bindings (Debian's python3-rados/-rbd) are linked into .venv.
#       The cinder_patches tests (tests/cinder) run the real cinder package
#       from a virtualenv of its own, .venv-cinder (cinder-requirements.txt).
#
# Installs are exact (-c constraints.txt) and happen again only when
# constraints.txt, the requirement files, setup.cfg or pyproject.toml change.
# PYTHON picks the interpreter for a new .venv (default: python3, >= 3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
VENV=$ROOT/.venv
DATA=$ROOT/.glance-data
CONF=$DATA/glance-api.conf
PYTHON=${PYTHON:-python3}
SHARED=${GLANCE_SHARED_DIR:-$ROOT/../shared}
STAMP=$VENV/.run-sh-installed
CINDER_VENV=$ROOT/.venv-cinder

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { printf 'run.sh: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Debian packages some steps need; installed when we are root, otherwise
# named so the user can install them.
need_debs() {
    (($#)) || return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian packages: $*"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "$@" >&2 ||
            { apt-get update -q >&2 && apt-get install -y -q "$@" >&2; } ||
            die "apt-get install $* failed"
    else
        die "missing system packages; install them first: apt-get install $*"
    fi
}

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_venv() {
    if [[ -x $VENV/bin/python ]] && python_ok "$VENV/bin/python"; then
        return
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (Python 3.11 or later is needed)"
    python_ok "$PYTHON" || die "$PYTHON is $("$PYTHON" -V 2>&1); 3.11 or later is needed"
    # Debian's python3 has no ensurepip without python3-venv.
    "$PYTHON" -c 'import ensurepip' 2>/dev/null || need_debs python3-venv
    [[ -e $VENV ]] && log "recreating $VENV (its python does not work)"
    rm -rf "$VENV"
    log "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV failed"
}

# What a package build (uWSGI is compiled from source) needs.
ensure_build_tools() {
    local missing=()
    command -v gcc >/dev/null || missing+=(gcc)
    "$VENV/bin/python" - <<'EOF' || missing+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(
    os.path.join(sysconfig.get_paths()['include'], 'Python.h')))
EOF
    need_debs "${missing[@]}"
}

# install FILE...: pip install -c constraints.txt -r FILE... -e . once per
# content of those files; "serve" is satisfied by a "test" install too.
install() {
    local files=("$@") hash args=()
    hash=$(cat constraints.txt setup.cfg pyproject.toml "${files[@]}" |
        sha256sum | cut -d' ' -f1)
    if [[ -f $STAMP ]] && grep -q "^$hash " "$STAMP"; then
        return
    fi
    for f in "${files[@]}"; do args+=(-r "$f"); done
    log "installing ${files[*]} into .venv (exact versions from constraints.txt)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c constraints.txt "${args[@]}" -e . >&2 ||
        die "pip install failed"
    echo "$hash ${files[*]}" >>"$STAMP"
    # A test install covers what serve needs.
    if [[ " ${files[*]} " == *" test-requirements.txt "* ]]; then
        hash=$(cat constraints.txt setup.cfg pyproject.toml requirements.txt |
            sha256sum | cut -d' ' -f1)
        echo "$hash requirements.txt" >>"$STAMP"
    fi
}

write_conf() {
    mkdir -p "$DATA/images"
    [[ -f $CONF ]] && return
    log "writing $CONF"
    cat >"$CONF.tmp" <<EOF
# glance-api for ./run.sh serve; written on first use and kept: edit freely.
# Every option is described in etc/glance-api.conf.

[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292

[database]
connection = sqlite:///$DATA/glance.sqlite

[glance_store]
# The default store is "file".
filesystem_store_datadir = $DATA/images

[paste_deploy]
# No flavor: the no-auth pipeline (see README.rst).
config_file = $ROOT/etc/glance-api-paste.ini
EOF
    mv "$CONF.tmp" "$CONF"
}

serve() {
    ensure_venv
    install requirements.txt
    write_conf
    "$VENV/bin/glance-manage" --config-file "$CONF" db sync >&2
    log "glance-api on http://127.0.0.1:9292 (config $CONF; Ctrl-C stops it)"
    exec "$VENV/bin/glance-api" --config-file "$CONF" "$@"
}

# The rados/rbd bindings are not on PyPI: Debian's, linked into a venv (it
# installs the packages as root). Without them the Ceph tests skip locally.
link_ceph_bindings() {
    "$SHARED/ceph/link-bindings.sh" "$1" >/dev/null 2>&1 ||
        log "no Ceph bindings in $1 ($SHARED/ceph/link-bindings.sh failed)"
}

# cinder can't join .venv: its dependencies change glance-api (setproctitle
# renames the gunicorn processes) and both register conflicting options on
# oslo.config's CONF. tests/cinder run it in a child process from here. If
# the install fails those tests skip (fail under GLANCE_TEST_REQUIRE_ALL=1).
ensure_cinder_venv() {
    local stamp=$CINDER_VENV/.run-sh-installed hash
    hash=$(cat constraints.txt cinder-requirements.txt | sha256sum |
        cut -d' ' -f1)
    if ! grep -qx "$hash" "$stamp" 2>/dev/null; then
        [[ -x $CINDER_VENV/bin/python ]] ||
            "$PYTHON" -m venv "$CINDER_VENV" || return 0
        log "installing cinder-requirements.txt into .venv-cinder"
        "$CINDER_VENV/bin/python" -m pip install -q \
            --disable-pip-version-check -c constraints.txt \
            -r cinder-requirements.txt >&2 ||
            { log "pip install into .venv-cinder failed"; return 0; }
        echo "$hash" >"$stamp"
    fi
    link_ceph_bindings "$CINDER_VENV"
}

run_tests() {
    ensure_venv
    ensure_build_tools
    install requirements.txt test-requirements.txt
    link_ceph_bindings "$VENV"
    ensure_cinder_venv
    local paths=() arg
    # The whole suite unless the arguments name tests.
    for arg in "$@"; do
        [[ $arg != -* && ( -e ${arg%%::*} ) ]] && paths+=("$arg")
    done
    ((${#paths[@]})) || set -- tests "$@"
    # -n 2 --dist loadfile: two workers, each test file on one of them (the
    # module-scoped glance-api servers are started once per file). Most
    # tests wait on servers and subprocesses, so two workers fit 2 cores.
    # --durations: the slowest tests, to keep the suite within CI's budget.
    exec "$VENV/bin/python" -m pytest -p no:cacheprovider \
        -n "${GLANCE_TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@"
}

case ${1:-} in
serve) shift; serve "$@" ;;
test) shift; run_tests "$@" ;;
*) usage ;;
esac
