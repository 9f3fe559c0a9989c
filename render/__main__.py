"""``python -m render`` runs the command line."""

from render.cli import run

run()
