"""`python -m edgepipe.apps.detect ...` runs `edgepipe detect ...`."""

import sys

from edgepipe.apps.cli import run

run(["detect", *sys.argv[1:]])
