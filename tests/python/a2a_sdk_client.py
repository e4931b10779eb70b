"""The official a2a-sdk (1.x) client against the gateway, in front of a real a2a-sdk agent
(tests/python/a2a_agent.py), in both protocol versions: the default transport (A2A 1.0,
PascalCase methods, `A2A-Version: 1.0`) and the compat transport (0.3, `message/send`), chosen
by the card version the gateway serves. Send, stream (events in order), tasks/get, cancel,
subscribe (resubscribe), the extended card, and for 1.0 also list and a push-notification
config method.
Args: BASE MASTER_KEY AGENT_URL."""

import asyncio
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    PushNotificationNotSupportedError,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)

AGENT_KEY = "sk-agent-secret-1234"


def request(text: str) -> SendMessageRequest:
    msg = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    return SendMessageRequest(message=msg)


def artifact_texts(events) -> list[str]:
    out = []
    for e in events:
        if e.HasField("artifact_update"):
            out += [p.text for p in e.artifact_update.artifact.parts]
        if e.HasField("task"):
            for a in e.task.artifacts:
                out += [p.text for p in a.parts]
    return out


def kinds(events) -> list[str]:
    out = []
    for e in events:
        if e.HasField("status_update"):
            out.append(TaskState.Name(e.status_update.status.state))
        else:
            out.append(e.WhichOneof("payload"))
    return out


async def check(base: str, http: httpx.AsyncClient, gateway: str, agent_url: str, version: str) -> None:
    resolver = A2ACardResolver(http, gateway)
    card = await resolver.get_agent_card(http_kwargs={"headers": {"A2A-Version": version}})
    assert all(i.url == gateway for i in card.supported_interfaces), card
    assert card.capabilities.streaming, card

    blocking = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
    transport = type(blocking._transport).__name__
    want = "JsonRpcTransport" if version == "1.0" else "CompatJsonRpcTransport"
    assert transport == want, (version, transport)

    # send (blocking): the finished task with its artifact
    events = [e async for e in blocking.send_message(request(f"hello {version}"))]
    assert len(events) == 1 and events[0].HasField("task"), events
    task = events[0].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED, task
    texts = "".join(artifact_texts(events))
    assert f"part-1: hello {version}" in texts and "part-3" in texts, texts

    # stream: every event, in order
    events = [e async for e in streaming.send_message(request("slow"))]
    seen = kinds(events)
    assert seen[0] == "task", seen
    assert seen[-1] == "TASK_STATE_COMPLETED", seen
    assert "TASK_STATE_WORKING" in seen, seen
    parts = artifact_texts(e for e in events if e.HasField("artifact_update"))
    assert parts == ["part-1: slow", "part-2", "part-3"], parts
    streamed_id = events[0].task.id

    # tasks/get
    got = await blocking.get_task(GetTaskRequest(id=streamed_id))
    assert got.id == streamed_id and got.status.state == TaskState.TASK_STATE_COMPLETED, got

    # cancel a task waiting for input
    events = [e async for e in blocking.send_message(request("wait"))]
    waiting = events[0].task
    assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, waiting
    canceled = await blocking.cancel_task(CancelTaskRequest(id=waiting.id))
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED, canceled
    got = await blocking.get_task(GetTaskRequest(id=waiting.id))
    assert got.status.state == TaskState.TASK_STATE_CANCELED, got

    # subscribe to a task waiting for input: its first event comes through the gateway before
    # the task can go on (so the stream is relayed as it arrives, not at its end); the answer
    # that lets it finish comes through the subscription
    events = [e async for e in blocking.send_message(request("wait"))]
    held = events[0].task
    sub = streaming.subscribe(SubscribeToTaskRequest(id=held.id))
    first = await anext(sub)
    assert first.HasField("task") and first.task.id == held.id, first
    go = request("go")
    go.message.task_id = held.id
    go.message.context_id = held.context_id
    events = [e async for e in blocking.send_message(go)]
    assert events[0].task.status.state == TaskState.TASK_STATE_COMPLETED, events
    later = [e async for e in sub]
    assert later and kinds(later)[-1] == "TASK_STATE_COMPLETED", kinds(later)
    assert "part-1: go" in artifact_texts(later), artifact_texts(later)

    # the authenticated extended card, pointing at the gateway
    ext = await blocking.get_extended_agent_card(GetExtendedAgentCardRequest())
    assert ext.name == "sdk-agent-extended", ext
    urls = [i.url for i in ext.supported_interfaces]
    assert urls and all(u == gateway for u in urls), urls
    assert agent_url.rstrip("/") not in str(ext), ext

    if version != "1.0":
        return  # 0.3 has no tasks/list; the compat transport no push config listing

    # tasks/list
    listed = await blocking.list_tasks(ListTasksRequest())
    ids = {t.id for t in listed.tasks}
    assert {streamed_id, waiting.id} <= ids, ids

    # a push-notification config method: the agent's own JSON-RPC error comes back
    try:
        await blocking.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=streamed_id)
        )
        raise AssertionError("push notifications are not supported by the agent")
    except PushNotificationNotSupportedError:
        pass


async def main(base: str, master: str, agent_url: str) -> None:
    admin = {"Authorization": f"Bearer {master}"}
    async with httpx.AsyncClient(timeout=30) as c:
        made = await c.post(
            f"{base}/v1/agents",
            headers=admin,
            json={
                "agent_name": "sdk-agent",
                "agent_card_params": {
                    "protocolVersion": "0.3.0",
                    "name": "sdk-agent",
                    "description": "an a2a-sdk agent behind the gateway",
                    "url": agent_url,
                    "version": "1.0.0",
                    "capabilities": {"streaming": True},
                    "supportsAuthenticatedExtendedCard": True,
                    "defaultInputModes": ["text"],
                    "defaultOutputModes": ["text"],
                    "skills": [{"id": "echo", "name": "echo", "description": "d", "tags": ["t"]}],
                },
                "litellm_params": {"api_key": AGENT_KEY, "timeout": 60},
                "static_headers": {"x-agent-token": "hdr-secret-5678"},
            },
        )
        made.raise_for_status()
        agent_id = made.json()["agent_id"]
        key = await c.post(f"{base}/key/generate", headers=admin, json={})
        key.raise_for_status()
        user_key = key.json()["key"]
    gateway = f"{base}/a2a/{agent_id}"
    for version in ("1.0", "0.3"):
        auth = {"Authorization": f"Bearer {user_key}"}
        async with httpx.AsyncClient(headers=auth, timeout=30) as http:
            await check(base, http, gateway, agent_url, version)
        print(f"{version} OK", flush=True)
    print(f"USER_KEY {user_key}")
    print("ALL OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
