"""``python -m mmsvc.devstack.registry --port P --database-url URL``."""

import sys

from mmsvc.devstack.registry import main

sys.exit(main())
