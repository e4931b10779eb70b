"""The anthropic SDK's Skills API (client.beta.skills.*) through the gateway.

Usage: skills_sdk.py BASE KEY MODEL
Creates a skill on the Anthropic account of MODEL (x-tianji-model) and one kept in the gateway,
lists, retrieves, versions, downloads and deletes them; prints one JSON line of what it made, then
ALL OK.
"""

import io
import json
import sys
import zipfile

import anthropic

base, key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
route = {"x-tianji-model": model}

SKILL_MD = b"---\nname: pdf-tools\ndescription: Fill and read PDF forms\n---\n# PDF tools\nUse run.py.\n"

# 1. on the account, as loose files
made = client.beta.skills.create(
    display_name="PDF tools",
    files=[("pdf-tools/SKILL.md", SKILL_MD, "text/markdown"), ("pdf-tools/run.py", b"print(1)\n", "text/x-python")],
    extra_headers=route,
)
assert made.type == "skill", made
assert made.id.startswith("skill_"), made
assert made.display_name == "PDF tools", made
on_account = made.id

# 2. in the gateway, as a zip
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("notes/SKILL.md", "---\nname: notes\ndescription: Take notes\n---\nWrite them down.\n")
local = client.beta.skills.create(files=[("notes.zip", buf.getvalue(), "application/zip")])
assert local.display_name == "notes", local
assert local.source == "custom", local

# 3. list (paged one by one, as the SDK pages), retrieve
page = client.beta.skills.list(limit=1)
assert len(page.data) == 1, page
ids = [s.id for s in client.beta.skills.list(limit=1)]
assert ids == [on_account, local.id], ids
got = client.beta.skills.retrieve(on_account)
assert got.id == on_account and got.latest_version_id, got

# 4. versions of the account's skill
v2 = client.beta.skills.versions.create(
    on_account,
    files=[("pdf-tools/SKILL.md", SKILL_MD.replace(b"Fill and read", b"Fill, read and sign"), "text/markdown")],
)
assert v2.type == "skill_version" and v2.skill_id == on_account, v2
versions = [v.version for v in client.beta.skills.versions.list(on_account)]
assert len(versions) == 2 and versions[0] == v2.version, versions
one = client.beta.skills.versions.retrieve(v2.version, skill_id=on_account)
assert one.description == "Fill, read and sign PDF forms", one
assert client.beta.skills.retrieve(on_account).latest_version_id == v2.version
gone_v = client.beta.skills.versions.delete(versions[1], skill_id=on_account)
assert gone_v.type == "skill_version_deleted", gone_v
assert [v.version for v in client.beta.skills.versions.list(on_account)] == [v2.version]

print(json.dumps({"on_account": on_account, "local": local.id, "version": v2.version}))

# 5. delete the local skill
gone = client.beta.skills.delete(local.id)
assert gone.type == "skill_deleted" and gone.id == local.id, gone
try:
    client.beta.skills.retrieve(local.id)
    raise AssertionError("deleted skill still readable")
except anthropic.NotFoundError:
    pass
print("ALL OK")
