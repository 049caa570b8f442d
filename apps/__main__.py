"""`python -m edgepipe.apps` runs the edgepipe command line."""

from edgepipe.apps.cli import main

raise SystemExit(main())
