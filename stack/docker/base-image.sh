#!/bin/bash
# Make the base image every Dockerfile of stack/docker/images starts FROM (debian:bookworm):
# present already -> nothing; pullable -> pulled; else built here with debootstrap from the
# Debian mirror apt uses (no image registry reachable, as on this project's machines) and
# loaded with `docker import` under the same name, so the Dockerfiles are the same everywhere.
set -euo pipefail
IMAGE=${CDC_BASE_IMAGE:-debian:bookworm}
SUITE=bookworm
MIRROR=${CDC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if timeout 120 docker pull -q "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "$IMAGE cannot be pulled and debootstrap is missing: apt-get install -y debootstrap" >&2
  exit 1
fi
root=$(mktemp -d /var/tmp/cdc-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building $IMAGE with debootstrap from $MIRROR (about a minute)" >&2
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# the same apt sources as the pulled image; no caches in the layer
echo "deb $MIRROR $SUITE main" > "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "imported $IMAGE" >&2
