#!/usr/bin/env bash
# Start/stop this repository's glance-api for benchmarks, set up like the
# upstream anchor (SQLite, filesystem store, delayed_delete, 2 workers).
#
#   benchmarks/ours.sh start RUN_DIR [PORT]   # RUN_DIR is WIPED and recreated
#   benchmarks/ours.sh stop RUN_DIR
#
# Env: PYTHON (default: the repository's .venv/bin/python), WORKERS (2),
# THREADS (threads_per_worker, 8).
# The store is RUN_DIR/images (pass it to api_bench.py --data-dir) and the
# server's pid is in RUN_DIR/glance-api.pid (for --rss-pid).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ACTION="${1:?usage: ours.sh start|stop RUN_DIR [PORT]}"
RUN_DIR="${2:?usage: ours.sh start|stop RUN_DIR [PORT]}"
PORT="${3:-19293}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
PIDFILE="$RUN_DIR/glance-api.pid"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "$ACTION" in
stop)
    if running; then
        PID="$(cat "$PIDFILE")"
        kill -TERM "$PID"
        for _ in $(seq 1 60); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
        echo "stopped $PID"
    fi
    rm -f "$PIDFILE"
    exit 0 ;;
start) ;;
*) echo "unknown action $ACTION" >&2; exit 2 ;;
esac

if running; then echo "already running: pid $(cat "$PIDFILE")" >&2; exit 1; fi
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/images"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
cat > "$RUN_DIR/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $PORT
workers = ${WORKERS:-2}
threads_per_worker = ${THREADS:-8}
delayed_delete = True
log_file = $RUN_DIR/glance-api.log

[database]
connection = sqlite:///$RUN_DIR/glance.sqlite

[glance_store]
filesystem_store_datadir = $RUN_DIR/images/

[paste_deploy]
config_file = $REPO/etc/glance-api-paste.ini
CONF

cd "$REPO"
"$PYTHON" -m glance.cmd.manage --config-file "$RUN_DIR/glance-api.conf" db sync \
    > "$RUN_DIR/db-sync.log" 2>&1
nohup "$PYTHON" -m glance.cmd.api --config-file "$RUN_DIR/glance-api.conf" \
    > "$RUN_DIR/console.log" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
for _ in $(seq 1 120); do
    if "$PYTHON" -c "import http.client as h, sys
c = h.HTTPConnection('127.0.0.1', $PORT, timeout=2)
c.request('GET', '/versions'); c.getresponse().read()" 2>/dev/null; then
        echo "up: pid $(cat "$PIDFILE") port $PORT run_dir $RUN_DIR"
        exit 0
    fi
    if ! running; then
        echo "glance-api exited; see $RUN_DIR/console.log" >&2
        tail -20 "$RUN_DIR/console.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "timed out waiting for port $PORT" >&2
exit 1
