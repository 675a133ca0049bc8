"""`python -m keynote`: the same as the `keynote` console script."""

import sys

from keynote.cli import main

sys.exit(main())
