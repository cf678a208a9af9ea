"""`bugdesk dsn create|list`: DSNs for Sentry SDKs, each an API token with only the ``ingest`` scope."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bugdesk.cli._app import JsonOption, app, console, database, fail, print_json
from bugdesk.errors import BugdeskError
from bugdesk.service import tokens

dsn_app = typer.Typer(help="DSNs for Sentry SDKs: create (printed once), list.", no_args_is_help=True)
app.add_typer(dsn_app, name="dsn")


def make_dsn(key: str, host: str, port: int, project: int, scheme: str = "http") -> str:
    """``http://KEY@HOST:PORT/PROJECT``: what ``sentry_sdk.init(dsn=...)`` takes."""
    return f"{scheme}://{key}@{host}:{port}/{project}"


@dsn_app.command("create")
def dsn_create(
    name: Annotated[str, typer.Argument(help="The token's name; reports it sends are recorded with it as actor.")],
    host: Annotated[str, typer.Option(help="The host the SDK reaches bugdesk at.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port of `bugdesk serve`.")] = 8765,
    project: Annotated[int, typer.Option(help="The project id in the DSN (kept in each report's details).")] = 1,
    https: Annotated[bool, typer.Option("--https", help="An https:// DSN (bugdesk behind a TLS proxy).")] = False,
) -> None:
    """Create an ingest-only token and print its DSN (shown this once; only the key's SHA-256 is stored).

    Example: bugdesk dsn create checkout-service --host bugs.internal --port 8765
    """
    with database():
        try:
            _, secret = tokens.create_token(name, "ingest")
        except BugdeskError as exc:
            fail(str(exc))
    console.print(f"DSN for {name!r} (ingest only; store it now, it is not shown again):", highlight=False)
    # Plain print: rich would wrap a long DSN across lines.
    print(make_dsn(secret, host, port, project, "https" if https else "http"))


@dsn_app.command("list")
def dsn_list(as_json: JsonOption = False) -> None:
    """List the tokens a DSN can use (those with the ingest scope); keys are never shown again.

    Example: bugdesk dsn list --json
    """
    with database():
        rows = [t for t in tokens.list_tokens() if "ingest" in t.scopes.split(",") or "admin" in t.scopes.split(",")]
    records = [
        {
            "name": t.name,
            "scopes": t.scopes,
            "created_at": t.created_at.isoformat() if t.created_at else None,
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked": t.revoked_at is not None,
        }
        for t in rows
    ]
    if as_json:
        print_json(records)
        return
    table = Table(title="DSN keys (ingest-scoped tokens)")
    for column in ("name", "scopes", "created", "last used", "revoked"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r["name"], r["scopes"], r["created_at"] or "", r["last_used_at"] or "-", "yes" if r["revoked"] else ""
        )
    console.print(table)
    if not records:
        console.print("no DSN yet: create one with `bugdesk dsn create my-service`")
