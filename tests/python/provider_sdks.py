"""Drive a running Tianji gateway with the official anthropic, openai and google-genai SDKs,
unchanged, against native provider deployments served by mock upstreams.

usage: provider_sdks.py BASE_URL API_KEY

Models the gateway must serve (see tests/it/sdk_providers.rs):
  claude        anthropic/...   Anthropic mock
  gpt           openai/...      OpenAI mock
  azure-gpt     azure/...       OpenAI mock behind Azure URLs
  bedrock       bedrock/...     Bedrock Converse mock (SigV4 checked by the mock)
  gemini        gemini/...      Gemini mock
  command       cohere/...      Cohere v2 mock
  *-embed       embeddings of gemini, bedrock (titan), cohere, azure
  image, tts, omni-moderation-latest   OpenAI images, speech and moderations
  rerank        cohere/rerank-...; search tool `web` (tavily) at the same mock
Provider pass-through (/anthropic, /openai) uses the claude and gpt deployments' credentials.
Every mock answers the same conversation: a get_weather(city="Paris") tool call.
"""
import json
import sys

import anthropic
import openai
from google import genai
from google.genai import types

base, key = sys.argv[1], sys.argv[2]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
PARIS = {"city": "Paris"}


def anthropic_sdk():
    a = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=20)
    tool = {"name": "get_weather", "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    for model in ("claude", "gpt"):
        m = a.messages.create(model=model, max_tokens=256, tools=[tool], messages=ASK)
        uses = [b for b in m.content if b.type == "tool_use"]
        assert uses and uses[0].name == "get_weather" and uses[0].input == PARIS, (model, m)
        assert m.stop_reason == "tool_use", (model, m)
        assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, (model, m.usage)

        with a.messages.stream(model=model, max_tokens=256, tools=[tool], messages=ASK) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        assert text == "Hello there", (model, text)
        uses = [b for b in final.content if b.type == "tool_use"]
        assert uses and uses[0].name == "get_weather" and uses[0].input == PARIS, (model, final)
        assert final.stop_reason == "tool_use", (model, final)
        assert final.usage.output_tokens > 0, (model, final.usage)

        n = a.messages.count_tokens(model=model, messages=ASK)
        assert n.input_tokens > 0, (model, n)

    try:
        a.messages.create(model="no-such-model", max_tokens=5, messages=ASK)
        raise AssertionError("expected an error for an unknown model")
    except anthropic.BadRequestError:
        pass


def openai_sdk():
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    for model in ("claude", "bedrock", "gemini", "azure-gpt", "command"):
        r = c.chat.completions.create(model=model, messages=ASK, tools=tools)
        calls = r.choices[0].message.tool_calls
        assert calls and calls[0].function.name == "get_weather", (model, r)
        assert json.loads(calls[0].function.arguments) == PARIS, (model, r)
        assert r.choices[0].finish_reason == "tool_calls", (model, r)
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, (model, r.usage)

        chunks = list(c.chat.completions.create(model=model, messages=ASK, tools=tools, stream=True,
                                                stream_options={"include_usage": True}))
        args, name = "", None
        for ch in chunks:
            for choice in ch.choices:
                for tc in choice.delta.tool_calls or []:
                    if tc.index == 0 and tc.function:
                        name = tc.function.name or name
                        args += tc.function.arguments or ""
        assert name == "get_weather" and json.loads(args) == PARIS, (model, name, args)
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0, (model, chunks[-1])

    for model, n in (("gemini-embed", 2), ("bedrock-embed", 2), ("cohere-embed", 2), ("azure-embed", 1)):
        inputs = ["hello", "world"][:n]
        e = c.embeddings.create(model=model, input=inputs if n > 1 else inputs[0])
        assert len(e.data) == n and all(len(d.embedding) > 0 for d in e.data), (model, e)

    try:
        c.chat.completions.create(model="claude", messages=[{"role": "user", "content": "too long"}], max_tokens=7)
        raise AssertionError("expected BadRequestError")
    except openai.BadRequestError as err:
        assert "prompt is too long" in str(err), err


def google_genai_sdk():
    g = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=base))
    for model in ("gemini", "gpt"):
        r = g.models.generate_content(model=model, contents="What is the weather in Paris?")
        calls = r.function_calls or []
        assert (r.text or calls), (model, r)
        assert r.usage_metadata.total_token_count > 0, (model, r.usage_metadata)

        text, calls = "", []
        for ch in g.models.generate_content_stream(model=model, contents="What is the weather in Paris?"):
            for cand in ch.candidates or []:
                for p in (cand.content.parts if cand.content else None) or []:
                    text += p.text or ""
                    if p.function_call:
                        calls.append(p.function_call)
        assert text or calls, (model, text, calls)

        n = g.models.count_tokens(model=model, contents="What is the weather in Paris?")
        assert n.total_tokens > 0, (model, n)


def openai_other_endpoints():
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)
    img = c.images.generate(model="image", prompt="a red fox", n=2)
    assert len(img.data) == 2 and img.data[0].url, img
    speech = c.audio.speech.create(model="tts", voice="alloy", input="Hello there")
    audio = speech.read()
    assert audio == bytes(range(256)) * 11 + bytes(range(184)), len(audio)
    mod = c.moderations.create(input="hurt")
    assert mod.results[0].flagged, mod
    mod = c.moderations.create(model="omni-moderation-latest", input=["a", "b"])
    assert mod.results, mod


def openai_uploads_files_batches_jobs():
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)
    wav = b"RIFF" + bytes(range(256)) * 40
    t = c.audio.transcriptions.create(model="stt", file=("a.wav", wav))
    assert t.text == "Hello there", t
    t = c.audio.translations.create(model="stt", file=("a.wav", wav))
    assert t.text == "Hello there", t
    e = c.images.edit(model="image", image=("a.png", b"\x89PNG...."), prompt="add a hat")
    assert e.data[0].b64_json, e
    v = c.images.create_variation(model="image", image=("a.png", b"\x89PNG...."))
    assert v.data[0].b64_json, v

    f = c.files.create(file=("in.jsonl", b'{"custom_id":"1","body":{}}\n'), purpose="batch",
                       extra_query={"model": "gpt"})
    assert f.id.startswith("file-") and f.purpose == "batch", f
    assert c.files.retrieve(f.id).id == f.id
    assert c.files.content(f.id).read() == b'{"custom_id":"/files/file-up-in/content","body":{"max_tokens":5}}\n'
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert b.id.startswith("batch_") and b.input_file_id == f.id, b
    assert c.batches.retrieve(b.id).id == b.id
    assert c.batches.cancel(b.id).status == "cancelling"
    out = c.batches.retrieve(b.id).output_file_id
    assert c.files.content(out).read().startswith(b'{"custom_id":"/files/file-up-out'), out
    j = c.fine_tuning.jobs.create(training_file=f.id, model="gpt-4o-mini-2024-07-18")
    assert j.id.startswith("ftjob-") and j.training_file == f.id, j
    assert c.fine_tuning.jobs.retrieve(j.id).id == j.id
    assert c.fine_tuning.jobs.cancel(j.id).id == j.id
    assert [ev.message for ev in c.fine_tuning.jobs.list_events(j.id)] == ["queued"]
    assert list(c.fine_tuning.jobs.checkpoints.list(j.id)) == []
    # lists hold every tenant's objects: admins only, with the model named
    assert [x.id for x in c.files.list(extra_query={"model": "gpt"})][0].startswith("file-")
    assert list(c.batches.list(extra_query={"model": "gpt"}))[0].id.startswith("batch_")
    d = c.files.delete(f.id)
    assert d.deleted and d.id == f.id, d


def openai_responses_rerank_search():
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=20)
    r = c.responses.create(model="gpt", input="Hi")
    assert r.id.startswith("resp_") and r.id != "resp_up1" and r.usage.total_tokens == 7, r
    events = list(c.responses.create(model="gpt", input="Hi", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.id == r.id, events
    assert c.responses.retrieve(r.id).id == r.id
    assert c.responses.cancel(r.id).status == "cancelled"
    assert list(c.responses.input_items.list(r.id)) == []
    c.responses.delete(r.id)
    # no SDK method for these: the SDK's own POST
    rr = c.post("/rerank", body={"model": "rerank", "query": "q", "documents": ["a", "b"], "top_n": 1},
                cast_to=object)
    assert rr["results"] and "relevance_score" in rr["results"][0], rr
    hits = c.post("/search/web", body={"query": "paris weather", "max_results": 2}, cast_to=object)
    assert hits["object"] == "search" and len(hits["results"]) == 2, hits


def provider_pass_through():
    a = anthropic.Anthropic(base_url=base + "/anthropic", api_key=key, max_retries=0, timeout=20)
    m = a.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=ASK)
    assert m.usage.input_tokens > 0 and m.content, m
    with a.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=ASK) as s:
        assert "".join(s.text_stream) == "Hello there"
    o = openai.OpenAI(base_url=base + "/openai/v1", api_key=key, max_retries=0, timeout=20)
    r = o.chat.completions.create(model="gpt-4o", messages=ASK)
    assert r.usage.total_tokens > 0, r


print('anthropic_sdk', flush=True)
anthropic_sdk()
print('openai_sdk', flush=True)
openai_sdk()
print('openai_other_endpoints', flush=True)
openai_other_endpoints()
print('openai_uploads_files_batches_jobs', flush=True)
openai_uploads_files_batches_jobs()
print('google_genai_sdk', flush=True)
google_genai_sdk()
print('openai_responses_rerank_search', flush=True)
openai_responses_rerank_search()
print('provider_pass_through', flush=True)
provider_pass_through()
print("ALL OK")
