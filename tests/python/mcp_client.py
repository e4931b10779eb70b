"""The official `mcp` SDK client (streamablehttp_client, or sse_client for a URL ending in /sse,
+ ClientSession) against the gateway.
Usage: mcp_client.py URL KEY OPS, OPS a JSON list of {"op": "list"} and
{"op": "call", "name": ..., "args": {...}}, {"op": "prompts"}, {"op": "prompt", "name", "args"},
{"op": "resources"}, {"op": "read", "uri"}. Prints one JSON line: a result per op (list: the
sorted tool names; call: {"text", "is_error"} or {"error"}), and the session id (over SSE: the one in the endpoint event)."""

import asyncio
import json
import sys
from datetime import timedelta

from mcp import ClientSession
from contextlib import asynccontextmanager

from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


@asynccontextmanager
async def transport(url, headers):
    if url.endswith("/sse"):
        got = {}
        opened = lambda sid: got.update(id=sid)  # noqa: E731
        async with sse_client(url, headers=headers, on_session_created=opened) as (read, write):
            yield read, write, lambda: got.get("id")
    else:
        async with streamablehttp_client(url, headers=headers) as (read, write, session_id):
            yield read, write, session_id


async def main(url, key, ops):
    out = []
    headers = {"Authorization": f"Bearer {key}"}
    async with transport(url, headers) as (read, write, session_id):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=30)) as s:
            init = await s.initialize()
            out.append({"version": init.protocolVersion, "session": session_id()})
            for op in ops:
                if op["op"] == "list":
                    tools = await s.list_tools()
                    out.append(sorted(t.name for t in tools.tools))
                    continue
                if op["op"] == "prompts":
                    out.append(sorted(p.name for p in (await s.list_prompts()).prompts))
                    continue
                if op["op"] == "prompt":
                    got = await s.get_prompt(op["name"], op.get("args", {}))
                    out.append(got.messages[0].content.text)
                    continue
                if op["op"] == "resources":
                    out.append(sorted(f"{r.name} {r.uri}" for r in (await s.list_resources()).resources))
                    continue
                if op["op"] == "read":
                    got = await s.read_resource(op["uri"])
                    out.append(got.contents[0].text)
                    continue
                try:
                    r = await s.call_tool(op["name"], op.get("args", {}))
                    text = "".join(c.text for c in r.content if getattr(c, "text", None) is not None)
                    out.append({"text": text, "is_error": r.isError})
                except McpError as e:
                    out.append({"error": e.error.message, "code": e.error.code})
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
