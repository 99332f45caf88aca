"""``python -m featherface.cli``."""

import sys

from featherface.cli import main

sys.exit(main())
