"""The openai SDK's vector stores API (client.vector_stores.*) through the gateway.

Usage: vector_stores_sdk.py BASE KEY FILE_MODEL EMBEDDING_MODEL
Uploads files to the deployment of FILE_MODEL (x-tianji-model), makes a store of the gateway's
own that embeds with EMBEDDING_MODEL, attaches the files (one by one and as a batch), searches
with and without attribute filters, reads a file's content, lists, updates and deletes; prints
one JSON line of what it made, then ALL OK.
"""

import json
import sys
import time

import openai
from openai import OpenAI

base, key, file_model, emb = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
route = {"x-tianji-model": file_model}

HANDBOOK = (
    "Office hours are from nine to five.\n\n"
    "The vacation policy grants 30 days of paid vacation per year.\n\n"
    "Expense reports are due on Fridays, with receipts for every expense.\n\n"
    "Security: rotate your password every ninety days; never share a password.\n"
)


def wait(check, what, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


f1 = client.files.create(file=("handbook.txt", HANDBOOK.encode(), "text/plain"), purpose="assistants", extra_headers=route)
f2 = client.files.create(
    file=("laptops.md", b"# Laptops\n\nEvery laptop is encrypted. Laptop loans last a year.\n", "text/markdown"),
    purpose="assistants",
    extra_headers=route,
)

vs = client.vector_stores.create(name="handbook", metadata={"team": "hr"}, extra_body={"embedding_model": emb})
assert vs.object == "vector_store", vs
assert vs.id.startswith("vs_"), vs
assert vs.name == "handbook" and vs.metadata == {"team": "hr"}, vs

vf = client.vector_stores.files.create(vector_store_id=vs.id, file_id=f1.id, attributes={"dept": "hr", "year": 2025})
assert vf.id == f1.id and vf.vector_store_id == vs.id, vf
done = wait(
    lambda: (lambda x: x if x.status != "in_progress" else None)(client.vector_stores.files.retrieve(file_id=f1.id, vector_store_id=vs.id)),
    "the file to be ingested",
)
assert done.status == "completed", done
assert done.usage_bytes == len(HANDBOOK.encode()), done
assert done.attributes == {"dept": "hr", "year": 2025}, done

batch = client.vector_stores.file_batches.create(vector_store_id=vs.id, file_ids=[f2.id], attributes={"dept": "it"})
assert batch.object == "vector_store.files_batch", batch
batch = wait(
    lambda: (lambda b: b if b.status != "in_progress" else None)(client.vector_stores.file_batches.retrieve(batch_id=batch.id, vector_store_id=vs.id)),
    "the batch",
)
assert batch.status == "completed" and batch.file_counts.completed == 1, batch
in_batch = list(client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id))
assert [x.id for x in in_batch] == [f2.id], in_batch

page = client.vector_stores.search(vector_store_id=vs.id, query="how many vacation days", max_num_results=2)
assert page.data, page
assert "vacation" in page.data[0].content[0].text, page
assert page.data[0].file_id == f1.id and page.data[0].filename == "handbook.txt", page.data[0]
assert len(page.data) <= 2

only_it = client.vector_stores.search(
    vector_store_id=vs.id, query="vacation", filters={"type": "eq", "key": "dept", "value": "it"}
)
assert only_it.data and all(r.file_id == f2.id for r in only_it.data), only_it
none = client.vector_stores.search(
    vector_store_id=vs.id,
    query="vacation",
    filters={"type": "and", "filters": [{"type": "eq", "key": "dept", "value": "hr"}, {"type": "gt", "key": "year", "value": 2030}]},
)
assert none.data == [], none

content = list(client.vector_stores.files.content(file_id=f1.id, vector_store_id=vs.id))
assert any("Expense reports" in c.text for c in content), content

files = list(client.vector_stores.files.list(vector_store_id=vs.id))
assert sorted(x.id for x in files) == sorted([f1.id, f2.id]), files
got = client.vector_stores.retrieve(vector_store_id=vs.id)
assert got.file_counts.completed == 2 and got.status == "completed", got
stores = list(client.vector_stores.list())
assert any(s.id == vs.id for s in stores), stores
updated = client.vector_stores.update(vector_store_id=vs.id, name="handbook v2")
assert updated.name == "handbook v2", updated

try:
    client.vector_stores.search(vector_store_id=vs.id, query="x", filters={"type": "like", "key": "a", "value": 1})
    raise AssertionError("a bad filter was accepted")
except openai.BadRequestError as e:
    assert "unknown filter type" in str(e), e

gone = client.vector_stores.files.delete(file_id=f2.id, vector_store_id=vs.id)
assert gone.deleted, gone
after = client.vector_stores.search(vector_store_id=vs.id, query="laptop", max_num_results=5)
assert all(r.file_id != f2.id for r in after.data), after

print(json.dumps({"vector_store_id": vs.id, "file_ids": [f1.id, f2.id]}))
deleted = client.vector_stores.delete(vector_store_id=vs.id)
assert deleted.deleted, deleted
try:
    client.vector_stores.retrieve(vector_store_id=vs.id)
    raise AssertionError("a deleted store was found")
except openai.NotFoundError:
    pass
print("ALL OK")
