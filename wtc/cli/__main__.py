"""``python -m wtc.cli``: the ``wtc`` command."""

import sys

from wtc.cli import main

sys.exit(main())
