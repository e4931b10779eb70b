"""The official `openai` SDK against chat and embedding models of a gateway:
`openai_models.py BASE KEY chat=<model>... embed=<model>...`. Each chat model answers whole
and streamed (with usage when asked for); each embedding model answers a vector (the SDK asks
for base64 by default). Prints ALL OK."""

import sys

from openai import OpenAI

base, key, *models = sys.argv[1:]
client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
messages = [{"role": "user", "content": "Say hello"}]

for m in models:
    kind, name = m.split("=", 1)
    if kind == "chat":
        r = client.chat.completions.create(model=name, messages=messages, max_tokens=20)
        assert r.choices[0].message.content, (name, r)
        assert r.usage and r.usage.total_tokens > 0, (name, r)
        text, usage = "", None
        for chunk in client.chat.completions.create(
            model=name, messages=messages, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
        assert text, name
        assert usage and usage.total_tokens > 0, (name, usage)
        print(name, "chat ok:", r.choices[0].message.content, "|", text)
    elif kind == "embed":
        e = client.embeddings.create(model=name, input=["one", "two"])
        assert len(e.data) == 2 and len(e.data[0].embedding) > 0, (name, e)
        print(name, "embed ok:", e.data[0].embedding[:3])
    else:
        raise SystemExit(f"unknown kind {kind}")
print("ALL OK")
