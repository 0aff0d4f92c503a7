#!/usr/bin/env bash
# Prints the path of a promtool: the one on PATH, else one taken out of Debian's prometheus package
# into a tools folder (no server installed or started: only the promtool binary is extracted).
set -euo pipefail
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
tools="${1:-.stack/tools}"
if [ ! -x "$tools/promtool" ]; then
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  ( cd "$work" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq >&2 && apt-get download prometheus >&2; }; } )
  dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
  mkdir -p "$tools" && cp "$work/x/usr/bin/promtool" "$tools/promtool"
fi
echo "$tools/promtool"
