"""Drive a running Tianji gateway with the official openai SDK, unchanged.

usage: sdk_check.py BASE_URL API_KEY
Checks chat, streaming chat, embeddings and models, with base_url with and without /v1,
and that errors surface as the SDK's typed exceptions.
"""
import sys

import openai
from openai import OpenAI

base, key = sys.argv[1], sys.argv[2]

for url in (base, base + "/v1"):
    c = OpenAI(base_url=url, api_key=key, max_retries=0)

    r = c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from the mock", r
    assert r.usage.total_tokens == 12, r.usage

    chunks = list(c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello world", text
    assert all(ch.usage is None for ch in chunks), "usage chunk leaked to a client that did not ask"

    chunks = list(c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9, chunks[-1]

    e = c.embeddings.create(model="emb-test", input="hello")
    assert e.data[0].embedding == [0.1, 0.2, 0.3], e

    ids = [m.id for m in c.models.list()]
    assert ids == ["gpt-test", "emb-test"], ids
    assert c.models.retrieve("gpt-test").id == "gpt-test"

    try:
        c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("expected BadRequestError")
    except openai.BadRequestError as err:
        assert "Invalid model name" in str(err), err

    bad = OpenAI(base_url=url, api_key="sk-wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("expected AuthenticationError")
    except openai.AuthenticationError:
        pass

print("ALL OK")
