"""Anthropic message batches through the gateway with the official `anthropic` SDK.

Usage: anthropic_batches.py BASE KEY OTHER_KEY ACCOUNT
  KEY creates and reads the batches; OTHER_KEY (another user) must not see or touch them;
  ACCOUNT is the mock Anthropic account (POST /_control/end ends its batches).
Prints one JSON line of what it saw, then ALL OK.
"""
import json
import sys
import urllib.request

import anthropic

base, key, other_key, account = sys.argv[1:5]
c = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)
other = anthropic.Anthropic(base_url=base, api_key=other_key, max_retries=0, timeout=30)


def request(custom_id):
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hello " + custom_id}],
        },
    }


seen = {}

# create -> in_progress, a sealed id
b = c.messages.batches.create(requests=[request("r0"), request("r1"), request("err-2"), request("r3")])
assert b.id.startswith("msgbatch_"), b.id
assert b.processing_status == "in_progress", b.processing_status
assert b.request_counts.processing == 4, b.request_counts
assert b.results_url is None
seen["id"] = b.id

got = c.messages.batches.retrieve(b.id)
assert got.id == b.id and got.processing_status == "in_progress"

# a second batch, canceled
b2 = c.messages.batches.create(requests=[request("c0")])
canceling = c.messages.batches.cancel(b2.id)
assert canceling.id == b2.id
assert canceling.processing_status == "canceling", canceling.processing_status

# the list shows the caller's own, newest first
mine = [x.id for x in c.messages.batches.list(limit=10)]
assert mine == [b2.id, b.id], mine
page = c.messages.batches.list(limit=1)
assert [x.id for x in page.data] == [b2.id] and page.has_more, page
assert [x.id for x in c.messages.batches.list(limit=1, after_id=b2.id).data] == [b.id]

# another user: not listed, not readable, not cancelable, not deletable
assert [x.id for x in other.messages.batches.list()] == []
for call in (
    lambda: other.messages.batches.retrieve(b.id),
    lambda: other.messages.batches.cancel(b.id),
    lambda: other.messages.batches.delete(b.id),
    lambda: list(other.messages.batches.results(b.id)),
):
    try:
        call()
        raise SystemExit("another user reached the batch")
    except anthropic.PermissionDeniedError:
        pass

# Anthropic finishes processing
urllib.request.urlopen(urllib.request.Request(account + "/_control/end", method="POST", data=b""))
done = c.messages.batches.retrieve(b.id)
assert done.processing_status == "ended", done.processing_status
assert done.results_url and b.id in done.results_url, done.results_url
assert c.messages.batches.retrieve(b2.id).processing_status == "ended"

# results, streamed JSONL with per-request usage
results = list(c.messages.batches.results(b.id))
assert [r.custom_id for r in results] == ["r0", "r1", "err-2", "r3"], results
ok = [r for r in results if r.result.type == "succeeded"]
assert len(ok) == 3
seen["input_tokens"] = sum(r.result.message.usage.input_tokens for r in ok)
seen["output_tokens"] = sum(r.result.message.usage.output_tokens for r in ok)
assert results[2].result.type == "errored"
# read twice: booked once
assert len(list(c.messages.batches.results(b.id))) == 4

# delete the canceled one; then it is gone from the list
d = c.messages.batches.delete(b2.id)
assert d.id == b2.id and d.type == "message_batch_deleted", d
mine = [x.id for x in c.messages.batches.list()]
assert mine == [b.id], mine

print(json.dumps(seen))
print("ALL OK")
