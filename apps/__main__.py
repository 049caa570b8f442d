"""`python -m apps` runs the edgepipe command line."""

from apps.cli import main

raise SystemExit(main())
