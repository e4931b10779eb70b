"""An upstream MCP tool server for the MCP gateway tests, built with the official `mcp` SDK
(FastMCP). Usage: mcp_tool_server.py TRANSPORT [PORT], TRANSPORT `http` (Streamable HTTP at
/mcp), `sse` (the older SSE transport at /sse) or `stdio` (newline-delimited JSON-RPC on stdin
and stdout; no PORT). Tools: echo, add, secret, header (a request
header as the server saw it), slow (sleeps), crash (the process dies mid-call); a prompt (greet) and a resource
(notes://today)."""

import asyncio
import os
import sys

from mcp.server.fastmcp import Context, FastMCP

transport = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
server = FastMCP("tools", host="127.0.0.1", port=port, log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Say it back."""
    return f"{transport}:{text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def secret() -> str:
    """A tool some keys may not use."""
    return "the secret"


@server.tool()
def header(name: str, ctx: Context) -> str:
    """A header of the HTTP request that carried this call."""
    request = ctx.request_context.request
    return request.headers.get(name, "") if request is not None else ""


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after a while."""
    await asyncio.sleep(seconds)
    return "late"


@server.tool()
def crash() -> str:
    """Die without answering."""
    os._exit(3)


@server.prompt()
def greet(who: str) -> str:
    """A prompt."""
    return f"Hello {who} from {transport}"


@server.resource("notes://today")
def today() -> str:
    """A resource."""
    return f"notes of {transport}"


server.run(transport={"http": "streamable-http", "sse": "sse", "stdio": "stdio"}[transport])
