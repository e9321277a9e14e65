"""`python -m tribune` runs the command-line interface."""

from tribune.cli import main

raise SystemExit(main())
