"""``python -m render`` runs the command line."""

from render.cli import main

raise SystemExit(main())
