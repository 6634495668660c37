"""Helpers for tests that run the real commands (no fixtures here)."""

import os
import socket
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_command(module, conf_file, *args, timeout=120):
    """Run ``python -m glance.cmd.<module> --config-file conf_file args``.

    ``conf_file`` None runs without ``--config-file``. Returns the
    CompletedProcess, output as text.
    """
    conf_args = ['--config-file', conf_file] if conf_file else []
    return subprocess.run(
        [sys.executable, '-m', 'glance.cmd.%s' % module, *conf_args, *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL)


def write_conf(path, sections):
    """Write ``{section: {key: value}}`` as an INI file at ``path``."""
    with open(path, 'w') as f:
        for section, options in sections.items():
            f.write('[%s]\n' % section)
            for key, value in options.items():
                f.write('%s = %s\n' % (key, value))
    return str(path)


def assert_one_line_error(result, *expected_words):
    """The command failed as a user error should: exit 1, one line
    ``ERROR: ...`` on stderr naming the problem, no traceback."""
    output = result.stdout + result.stderr
    assert 'Traceback' not in output, output
    assert result.returncode == 1, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith('ERROR: '), output
    for word in expected_words:
        assert word.lower() in lines[0].lower(), output
    return lines[0]


def child_pids(pid):
    """Pids of the live (non-zombie) processes whose parent is ``pid``."""
    children = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parens.
        fields = stat[stat.rindex(')') + 2:].split()
        if int(fields[1]) == pid and fields[0] != 'Z':
            children.append(int(entry))
    return sorted(children)
