"""``python -m mmsvc.processes.admin``: the same as the ``mmsvc-admin`` console script."""

from mmsvc.processes.admin.main import main

main()
