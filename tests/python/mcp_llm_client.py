"""The official `openai` SDK asking the gateway for chat completions and responses whose tools
name the gateway's MCP servers. Usage: mcp_llm_client.py BASE KEY OPS, OPS a JSON list of
{"api": "responses" | "chat", "model", "tools", "stream": bool}. Prints one JSON line: per op
{"text", "items"} (responses: the output items' types, its mcp_list_tools and mcp_call items;
stream: the event types) or {"status", "message"} for an error."""

import json
import sys

import openai

base, key, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)


def responses(op):
    args = dict(model=op["model"], input="Say something with a tool.", tools=op["tools"])
    if op.get("stream"):
        kinds, text, final = [], "", None
        for ev in client.responses.create(stream=True, **args):
            kinds.append(ev.type)
            if ev.type == "response.output_text.delta":
                text += ev.delta
            if ev.type == "response.completed":
                final = ev.response
        return {"text": text, "events": kinds, "final_text": final.output_text if final else None}
    r = client.responses.create(**args)
    items = [i.model_dump() for i in r.output]
    return {"text": r.output_text, "types": [i["type"] for i in items], "items": items}


def chat(op):
    args = dict(
        model=op["model"],
        messages=[{"role": "user", "content": "Say something with a tool."}],
        tools=op["tools"],
    )
    if op.get("stream"):
        text, finish = "", None
        for chunk in client.chat.completions.create(stream=True, **args):
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        return {"text": text, "finish": finish}
    r = client.chat.completions.create(**args)
    return {"text": r.choices[0].message.content, "finish": r.choices[0].finish_reason}


out = []
for op in ops:
    try:
        out.append(responses(op) if op["api"] == "responses" else chat(op))
    except openai.APIStatusError as e:
        out.append({"status": e.status_code, "message": str(e)})
print(json.dumps(out))
