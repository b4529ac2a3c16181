"""Console script ``mmsvc-admin``: gunicorn with the admin settings, as supervisord runs it."""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import run

from mmsvc.processes import breakglass

ARGV = [
    "mmsvc-admin",
    "-c",
    "python:mmsvc.processes.admin.gunicorn_conf",
    "mmsvc.processes.admin.wsgi:app",
]


def main() -> None:
    """Serve the admin API on HTTP_HOST:HTTP_PORT until SIGTERM; extra arguments go to gunicorn.

    ``mmsvc-admin kill ...`` is the break-glass kill instead (:mod:`mmsvc.processes.breakglass`).
    """
    if sys.argv[1:2] == ["kill"]:
        breakglass.main(sys.argv[2:])
        return
    sys.argv = [*ARGV[:1], *sys.argv[1:], *ARGV[1:]]
    run()


if __name__ == "__main__":
    main()
