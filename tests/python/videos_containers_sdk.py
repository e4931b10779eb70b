"""The openai SDK's videos and containers APIs (client.videos.*, client.containers.*) through
the gateway.

Usage: videos_containers_sdk.py BASE KEY MODEL
MODEL is a Sora model group. Creates a video with an uploaded reference image, polls it,
downloads it, remixes and deletes it; creates a container, uploads a file to it, lists, reads
and deletes them; prints one JSON line of the ids it saw, then ALL OK.
"""

import json
import sys
import warnings

import openai

warnings.simplefilter("ignore", DeprecationWarning)

base, key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

# videos: multipart with an input reference image
video = client.videos.create(
    model=model,
    prompt="a lighthouse at dawn",
    seconds="8",
    size="1280x720",
    input_reference=("ref.png", b"\x89PNG\r\n\x1a\nfake", "image/png"),
)
assert video.object == "video", video
assert video.id.startswith("video_"), video
assert video.status in ("queued", "in_progress"), video
got = client.videos.retrieve(video.id)
assert got.id == video.id and got.status == "completed", got
listed = [v.id for v in client.videos.list()]
assert listed == [video.id], listed
content = client.videos.download_content(video.id)
data = content.read()
assert data == b"MP4-BYTES-" + b"v" * 1000, data[:40]
remixed = client.videos.remix(video.id, prompt="the same at dusk")
assert remixed.id.startswith("video_") and remixed.id != video.id, remixed
assert remixed.remixed_from_video_id == video.id, remixed
deleted = client.videos.delete(remixed.id)
assert deleted.deleted and deleted.id == remixed.id, deleted
listed = [v.id for v in client.videos.list()]
assert listed == [video.id], listed

# containers
box = client.containers.create(
    name="analysis", expires_after={"anchor": "last_active_at", "minutes": 20}, extra_headers={"x-tianji-model": model}
)
assert box.object == "container" and box.id.startswith("cntr_"), box
assert box.name == "analysis", box
assert client.containers.retrieve(box.id).id == box.id
assert [c.id for c in client.containers.list()] == [box.id]
f = client.containers.files.create(box.id, file=("data.csv", b"a,b\n1,2\n", "text/csv"))
assert f.object == "container.file", f
files = [x.id for x in client.containers.files.list(box.id)]
assert files == [f.id], files
one = client.containers.files.retrieve(f.id, container_id=box.id)
assert one.id == f.id, one
body = client.containers.files.content.retrieve(f.id, container_id=box.id).read()
assert body == b"a,b\n1,2\n", body
client.containers.files.delete(f.id, container_id=box.id)
gone = client.containers.delete(box.id)
assert [c.id for c in client.containers.list()] == [], "container still listed"

print(json.dumps({"video": video.id, "remix": remixed.id, "container": box.id}))
print("ALL OK")
