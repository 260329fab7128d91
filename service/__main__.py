"""``python -m service``: the ``painpath`` command line (``service.cli.main``)."""

import sys

from service.cli.main import main

sys.exit(main())
