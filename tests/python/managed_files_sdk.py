"""The openai SDK's files and batches APIs with a file sent to two deployments at once
(LiteLLM's managed files: `target_model_names`).

Usage: managed_files_sdk.py BASE KEY MODEL_A MODEL_B
Uploads one JSONL file with target_model_names "MODEL_A,MODEL_B", creates a batch on each model
from the same file id, reads them back and lists the caller's files and batches; prints one JSON
line of the ids it saw, then ALL OK.
"""

import json
import sys
import warnings

import openai

warnings.simplefilter("ignore", DeprecationWarning)

base, key, model_a, model_b = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

line = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model_a, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}}
f = client.files.create(
    file=("in.jsonl", (json.dumps(line) + "\n").encode(), "application/jsonl"),
    purpose="batch",
    extra_body={"target_model_names": f"{model_a},{model_b}"},
)
assert f.object == "file", f
assert f.id.startswith("file-"), f
assert client.files.retrieve(f.id).id == f.id
assert client.files.content(f.id).read().startswith(b'{"custom_id"')

batches = []
for model in (model_a, model_b):
    b = client.batches.create(
        input_file_id=f.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_body={"model": model},
    )
    assert b.id.startswith("batch_"), b
    assert b.input_file_id == f.id, b
    batches.append(b.id)
assert batches[0] != batches[1], batches

for bid in batches:
    got = client.batches.retrieve(bid)
    assert got.id == bid and got.input_file_id == f.id, got
    assert got.output_file_id.startswith("file-"), got
    out = client.files.content(got.output_file_id).read()
    assert out.startswith(b'{"custom_id"'), out

listed = [b.id for b in client.batches.list()]
assert sorted(listed) == sorted(batches), listed
files = [x.id for x in client.files.list()]
assert f.id in files, files

print(json.dumps({"file": f.id, "batches": batches}))
print("ALL OK")
