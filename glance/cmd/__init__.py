"""Command-line entry points: glance-api, glance-manage, glance-scrubber.

Deliberately empty: glance-scrubber must monkey-patch eventlet before
anything (ssl, sockets, threads) is imported, and importing this package
comes first.
"""
