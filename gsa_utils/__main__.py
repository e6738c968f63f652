"""Entry point of ``python -m gsa_utils`` (the command line of :mod:`gsa_utils.cli`)."""

import sys

from .cli import main

sys.exit(main())
