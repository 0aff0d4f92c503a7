#!/bin/bash
# Runs once, at the first start of a service database container (entrypoint.sh): the same roles
# and grants as the native stack's stack/roles.py. Passwords come from the environment.
set -euo pipefail
: "${SERVICE:?}" "${SERVICE_PASSWORD:?}" "${DEBEZIUM_PASSWORD:?}" "${OBSERVER_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE ${SERVICE}_service LOGIN PASSWORD '${SERVICE_PASSWORD}';
CREATE ROLE cdc_debezium LOGIN REPLICATION PASSWORD '${DEBEZIUM_PASSWORD}';
CREATE ROLE cdc_observer LOGIN PASSWORD '${OBSERVER_PASSWORD}';
CREATE DATABASE ${SERVICE} OWNER ${SERVICE}_service;
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE ${SERVICE} FROM PUBLIC;
GRANT CONNECT ON DATABASE ${SERVICE} TO cdc_debezium, cdc_observer;
GRANT pg_monitor TO cdc_observer;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$SERVICE" <<SQL
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ${SERVICE}_service;
GRANT USAGE ON SCHEMA public TO cdc_debezium, cdc_observer;
ALTER DEFAULT PRIVILEGES FOR ROLE ${SERVICE}_service IN SCHEMA public GRANT SELECT ON TABLES TO cdc_observer;
SQL
