"""A real A2A agent built with the a2a-sdk (1.x) server classes, serving JSON-RPC at `/` for both
protocol versions (1.0 PascalCase and, through the SDK's compat adapter, 0.3 `message/send`), for
the gateway's A2A tests. Args: RECORD_FILE. Each request's method, path, headers and body are
written as one JSON line to RECORD_FILE (so a test can check which credentials reached the
agent); prints `READY <port>` once listening on 127.0.0.1; stops when its stdin closes.

What it does with a message (its text):
- `wait`: a task left waiting for input (`TASK_STATE_INPUT_REQUIRED`), to be fetched or cancelled;
- `slow`: a task whose events come 0.3 s apart (for relaying as they arrive);
- anything else: a task that is worked on, gets three artifact chunks (`part-1`..`part-3`, the
  first echoing the text) and completes.
"""

import asyncio
import json
import logging
import socket
import sys
import threading

import uvicorn
from starlette.applications import Starlette

from a2a.helpers.proto_helpers import get_message_text, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Role,
    Task,
    TaskState,
    TaskStatus,
)


class Executor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = get_message_text(context.message) if context.message else ""
        task = context.current_task
        if task is None:
            task = Task(
                id=context.task_id,
                context_id=context.context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message],
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        if text == "wait":
            await updater.requires_input(
                new_text_message("waiting for you", context_id=task.context_id, task_id=task.id, role=Role.ROLE_AGENT)
            )
            return
        await updater.start_work()
        pause = 0.3 if text == "slow" else 0
        for i in (1, 2, 3):
            if pause:
                await asyncio.sleep(pause)
            body = f"part-{i}: {text}" if i == 1 else f"part-{i}"
            await updater.add_artifact(
                [new_text_part(body)], artifact_id="answer", append=i > 1, last_chunk=i == 3
            )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        updater = TaskUpdater(event_queue, context.task_id, task.context_id if task else context.context_id)
        await updater.cancel()


def card(url: str, extended: bool = False) -> AgentCard:
    return AgentCard(
        name="sdk-agent-extended" if extended else "sdk-agent",
        description="an a2a-sdk agent",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True, extended_agent_card=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[AgentSkill(id="echo", name="echo", description="echoes", tags=["t"])],
    )


class Recorder:
    """ASGI middleware: one JSON line per request (method, path, headers, body)."""

    def __init__(self, app, path):
        self.app = app
        self.path = path
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks = []
        more = True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        line = {
            "method": scope["method"],
            "path": scope["path"],
            "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            "body": body.decode("utf-8", "replace"),
        }
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def main() -> None:
    # the errors it answers on purpose (push notifications unsupported) are not news
    logging.getLogger("a2a").setLevel(logging.CRITICAL)
    record = sys.argv[1]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    handler = DefaultRequestHandler(
        agent_executor=Executor(),
        task_store=InMemoryTaskStore(),
        agent_card=card(url),
        extended_agent_card=card(url, extended=True),
    )
    routes = create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
    routes += create_agent_card_routes(card(url))
    app = Recorder(Starlette(routes=routes), record)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    def stop_on_stdin_close() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_on_stdin_close, daemon=True).start()
    print(f"READY {port}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
