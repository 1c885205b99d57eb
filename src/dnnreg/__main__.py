"""``python -m dnnreg`` runs the command line."""

import sys

from dnnreg.cli import main

sys.exit(main())
