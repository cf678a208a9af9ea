"""bugdesk as an MCP server: the same service calls as the HTTP API, as tools an agent's model can call.

``bugdesk mcp`` serves it over stdio (``bugdesk.cli.mcp``); ``bugdesk.mcp.http.mcp_http_app`` is the
Streamable HTTP transport, mounted by the API server at ``/mcp``.
"""

from bugdesk.mcp.server import ActorResolver, Caller, client_name_caller, make_server

__all__ = ["ActorResolver", "Caller", "client_name_caller", "make_server"]
