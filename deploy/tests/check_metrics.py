#!/usr/bin/env python3
"""Checks that every metric the alerts and dashboards query is one caravan exports.

    check_metrics.py --from deploy/k8s/components/monitoring [--also MANIFEST]... METRICS_TXT

METRICS_TXT is the /metrics page of `caravan up` (the smoke test's), which
names every family the binary registers, with or without series yet.
The queries are the rules of rules.yaml and the panels of dashboards/*.json
in that folder, and the Prometheus triggers of the KEDA ScaledObjects in
each --also manifest. A query may also name a recording rule (`caravan:…`) or a
metric of the two other exporters the rules rely on: kube-state-metrics
(`kube_…`) and the OpenTelemetry Collector's own telemetry (`otelcol_…`).
Exits non-zero listing every query that names anything else.
"""

import json
import pathlib
import re
import sys

import yaml

EXTERNAL = ("kube_", "otelcol_")
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "inf", "nan", "Inf", "NaN",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def exported(metrics_text):
    """The families /metrics names, with their types."""
    types = {}
    for line in metrics_text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            types[parts[2]] = parts[3]
    return types


def names_in(expr):
    """The metric (or recording rule) names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                 # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                            # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                           # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        token = match.group(0)
        rest = expr[match.end():].lstrip()
        if token in KEYWORDS or rest.startswith("("):
            continue
        names.add(token)
    return names


def queries(rules, dashboards, manifests):
    """(where, expression) of every rule, panel target and scaling trigger."""
    for path, docs in manifests:
        for doc in docs:
            if doc and doc.get("kind") == "ScaledObject":
                for trigger in doc["spec"].get("triggers", []):
                    if trigger.get("type") == "prometheus":
                        yield f"{path}: ScaledObject {doc['metadata']['name']}", trigger["metadata"]["query"]
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]
    for path, dashboard in dashboards:
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                yield f"{path}: panel {panel['title']!r}", target["expr"]


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--from" or len(args) % 2 != 1:
        sys.exit(__doc__)
    folder, metrics_txt = pathlib.Path(args[1]), args[-1]
    also = [args[i + 1] for i in range(2, len(args) - 1, 2) if args[i] == "--also"]
    if len(also) != (len(args) - 3) // 2:
        sys.exit(__doc__)
    manifests = [(path, list(yaml.safe_load_all(pathlib.Path(path).read_text()))) for path in also]
    with open(metrics_txt) as f:
        types = exported(f.read())
    rules = yaml.safe_load((folder / "rules.yaml").read_text())
    dashboards = [(str(path), json.loads(path.read_text())) for path in sorted((folder / "dashboards").glob("*.json"))]
    if not dashboards:
        sys.exit(f"no dashboards in {folder / 'dashboards'}")
    recorded = {r["record"] for g in rules["spec"]["groups"] for r in g["rules"] if "record" in r}
    failures = []
    checked = 0
    for where, expr in queries(rules, dashboards, manifests):
        for name in sorted(names_in(expr)):
            checked += 1
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if name in types and types[name] != "histogram":
                continue
            if base and types.get(base) == "histogram":
                continue
            if name in recorded or name.startswith(EXTERNAL):
                continue
            failures.append(f"{where}: `{name}` is not exported by caravan (nor a recording rule)")
    if not types:
        failures.append(f"{metrics_txt}: no metric families at all")
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{checked} metric references in {len(dashboards)} dashboards and the rules; "
          f"{len(types)} families exported; {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
