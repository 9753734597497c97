#!/usr/bin/env bash
# The monitoring files: the Prometheus configuration and alert rules are valid, the rules' unit
# tests pass (every alert fires in one case and stays quiet in another), the Grafana dashboard
# and provisioning files parse. Needs promtool (`make tools` installs it into .pcn/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
PROMTOOL=${PROMTOOL:-.pcn/bin/promtool}
[ -x "$PROMTOOL" ] || { echo "promtool not found at $PROMTOOL: run make tools" >&2; exit 1; }
"$PROMTOOL" check config deploy/prometheus/prometheus.yml
"$PROMTOOL" test rules deploy/prometheus/alerts.test.yml
for file in deploy/grafana/dashboards/*.json; do
  python3 -m json.tool "$file" >/dev/null || { echo "$file is not valid JSON" >&2; exit 1; }
done
echo "monitoring files ok"
