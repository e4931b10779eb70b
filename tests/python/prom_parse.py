"""Parse an OpenMetrics exposition (stdin) with prometheus_client's parser and print it as JSON:
{"families": {name: type}, "samples": [[name, {labels}, value], ...]}. A text the parser
rejects exits non-zero with its error."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families = {}
samples = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families[f.name] = f.type
    for s in f.samples:
        samples.append([s.name, s.labels, s.value])
json.dump({"families": families, "samples": samples}, sys.stdout)
