"""``python -m wtc.bench``."""

import sys

from wtc.bench import main

sys.exit(main())
