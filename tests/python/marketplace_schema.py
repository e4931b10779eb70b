"""Validate a Claude Code marketplace.json (stdin) against the schema written from Claude Code's
documentation (claude_code_marketplace.schema.json, next to this file) with the jsonschema
package. Prints "ok", or every error with its path and exits 1."""

import json
import pathlib
import sys

import jsonschema

schema = json.loads(
    (pathlib.Path(__file__).parent / "claude_code_marketplace.schema.json").read_text()
)
jsonschema.Draft202012Validator.check_schema(schema)
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin)))
for e in errors:
    print(f"{'/'.join(map(str, e.absolute_path))}: {e.message}")
if errors:
    sys.exit(1)
print("ok")
