#!/bin/bash
# First start: initdb with the superuser's password and scram-sha-256, then the service's roles
# and database (init-service-db.sh, the same as stack/roles.py). Every start: the settings of the
# native stack (stack/postgres.py cluster_conf), on PG_LISTEN:PG_PORT.
set -euo pipefail
: "${POSTGRES_PASSWORD:?}" "${SERVICE:?}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-host=scram-sha-256 --auth-local=peer -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
  echo "include_if_exists = 'cdc.conf'" >> "$PGDATA/postgresql.conf"
  # containers on a compose network reach each other by address: password (scram) from anywhere
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  POSTGRES_USER=postgres init-service-db.sh
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
cat > "$PGDATA/cdc.conf" <<CONF
# written by the container at every start
listen_addresses = '${PG_LISTEN}'
port = ${PG_PORT}
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = '2GB'
track_commit_timestamp = on
password_encryption = 'scram-sha-256'
shared_buffers = '48MB'
max_connections = 60
log_min_messages = warning
CONF
exec postgres -D "$PGDATA"
