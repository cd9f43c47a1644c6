"""``python -m heartsong`` runs the command-line interface."""

import sys

from heartsong.cli import main

sys.exit(main())
