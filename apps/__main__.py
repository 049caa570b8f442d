"""`python -m edgepipe.apps` runs the edgepipe command line."""

from edgepipe.apps.cli import run

run()
