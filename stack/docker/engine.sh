#!/bin/bash
# Start a Docker engine when none answers (idempotent), for `make test-docker` and CI.
# On a machine without a service manager (a CI container) dockerd is started here, as root,
# without its default bridge and iptables rules: the compose stack uses host networking on
# loopback (docker-compose.host.yml), so the engine needs no private network of its own.
# A user's machine normally runs the engine as a service already: then this does nothing.
set -euo pipefail
LOG=${CDC_DOCKERD_LOG:-/var/log/cdc-dockerd.log}

# cgroup v1 with the host's processes in the root group: all containers together would weigh as
# much as ONE host process (cpu.shares 1024), and crawl on a busy machine. Weigh them as the dozen
# processes the native stack runs.
share_cpu() {
  local shares=/sys/fs/cgroup/cpu/docker/cpu.shares
  # the engine makes the group at its first container; made here, it is the one it then uses
  [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ] && mkdir -p /sys/fs/cgroup/cpu/docker 2>/dev/null
  if [ -w "$shares" ] && [ "$(cat "$shares")" -lt "${CDC_DOCKER_CPU_SHARES:-12288}" ]; then
    echo "${CDC_DOCKER_CPU_SHARES:-12288}" > "$shares" || true
  fi
}

if docker info >/dev/null 2>&1; then
  share_cpu
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "no Docker engine answers and dockerd is not installed: apt-get install -y docker.io" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "no Docker engine answers; starting dockerd needs root (or start your docker service)" >&2
  exit 1
fi
echo "starting dockerd (log: $LOG)" >&2
setsid dockerd --bridge=none --iptables=false --ip-masq=false >"$LOG" 2>&1 < /dev/null &
echo $! > /var/run/cdc-dockerd.pid
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    share_cpu
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer within 30 s; last lines of $LOG:" >&2
tail -20 "$LOG" >&2
exit 1
