"""`python -m apps.detect ...` runs `edgepipe detect ...`."""

import sys

from apps.cli import main

sys.exit(main(["detect", *sys.argv[1:]]))
