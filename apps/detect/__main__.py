"""`python -m edgepipe.apps.detect ...` runs `edgepipe detect ...`."""

import sys

from edgepipe.apps.cli import main

sys.exit(main(["detect", *sys.argv[1:]]))
