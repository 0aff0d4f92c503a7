#!/bin/bash
# The Connect worker of stack/kafka.py connect_properties(), configured from the environment:
#   BOOTSTRAP_SERVERS, CONNECT_REST_LISTEN, CONNECT_REST_PORT, CONNECT_ADVERTISED_HOST, CDC_KAFKA_CONNECT_PASSWORD
#   CDC_<SERVICE>_DB_HOST, _DB_PORT, _DEBEZIUM_PASSWORD   one triple per service database
# Before it starts, each database's system identifier becomes CDC_<SERVICE>_SYSTEM_ID (read with
# IDENTIFY_SYSTEM as the Debezium role): the connectors stamp it on every event, so replicas can
# tell a rebuilt source from the old one, as on the native stack.
set -euo pipefail
: "${BOOTSTRAP_SERVERS:?}" "${CDC_KAFKA_CONNECT_PASSWORD:?}"
REST_PORT=${CONNECT_REST_PORT:-8083}
ETC=/tmp/cdc-connect
mkdir -p "$ETC"

for host_var in $(compgen -e | grep -E '^CDC_[A-Z0-9_]+_DB_HOST$'); do
  p=${host_var%_DB_HOST}
  port_var=${p}_DB_PORT pw_var=${p}_DEBEZIUM_PASSWORD
  db=$(tr '[:upper:]' '[:lower:]' <<<"${p#CDC_}")
  id=$(PGPASSWORD=${!pw_var} psql -Atq -c IDENTIFY_SYSTEM \
        "host=${!host_var} port=${!port_var} user=cdc_debezium dbname=$db replication=database connect_timeout=10" \
        | cut -d'|' -f1)
  [ -n "$id" ] || { echo "no system identifier from $db at ${!host_var}:${!port_var}" >&2; exit 1; }
  export "${p}_SYSTEM_ID=$id"
  echo "source $db: system identifier $id"
done

jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"cdc-connect\" password=\"\${env:CDC_KAFKA_CONNECT_PASSWORD}\";"
{
  echo "bootstrap.servers=$BOOTSTRAP_SERVERS"
  for prefix in "" producer. consumer. admin.; do
    echo "${prefix}security.protocol=SASL_PLAINTEXT"
    echo "${prefix}sasl.mechanism=SCRAM-SHA-256"
    echo "${prefix}sasl.jaas.config=$jaas"
  done
  cat <<PROPS
group.id=cdc-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic=_connect-configs
offset.storage.topic=_connect-offsets
status.storage.topic=_connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=2000
listeners=http://${CONNECT_REST_LISTEN:-0.0.0.0}:$REST_PORT
rest.advertised.host.name=${CONNECT_ADVERTISED_HOST:-connect}
rest.advertised.port=$REST_PORT
plugin.path=/opt/cdc/plugins
scheduled.rebalance.max.delay.ms=0
topic.creation.enable=true
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^CDC_.*
PROPS
} > "$ETC/connect-distributed.properties"

exec java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/cdc/log4j2.properties \
  -cp "/opt/cdc/lib/kafka/*" org.apache.kafka.connect.cli.ConnectDistributed "$ETC/connect-distributed.properties"
