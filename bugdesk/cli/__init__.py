"""The ``bugdesk`` command line: thin commands over the service layer and the shared queries.

Each module registers its commands on the one Typer ``app``; importing them here
is what makes them part of the CLI.
"""

from bugdesk.cli import (  # noqa: F401  (registers commands)
    analyst,
    db,
    demo,
    dsn,
    groups,
    mcp,
    ops,
    reports,
    serve,
    status,
    sync,
    tui,
)
from bugdesk.cli._app import app, main

__all__ = ["app", "main"]
