#!/bin/bash
# The broker of stack/kafka.py server_properties(), configured from the environment:
#   KAFKA_CLIENT_LISTENER / KAFKA_CLIENT_ADVERTISED  listener the other containers use (kafka:9092)
#   KAFKA_HOST_PORT     a second listener, advertised as 127.0.0.1:<port>, for the host's clients
#                       (published on the same port); empty with host networking (one listener)
#   KAFKA_CONTROLLER_LISTENER  the controller's own address (only the broker itself uses it)
#   CDC_KAFKA_{ADMIN,CONTROLLER,CONNECT}_PASSWORD
# The admin's and Connect's SCRAM users are made when the storage is formatted, and Connect's own
# ACLs (its _connect-* topics and its group) once the broker answers: then Connect can start.
# Every other user and ACL comes from `cdc compose up` (stack/compose_stack.py), as on native.
set -euo pipefail
: "${CDC_KAFKA_ADMIN_PASSWORD:?}" "${CDC_KAFKA_CONTROLLER_PASSWORD:?}" "${CDC_KAFKA_CONNECT_PASSWORD:?}"
CLIENT=${KAFKA_CLIENT_LISTENER:-0.0.0.0:9092}
ADVERTISED=${KAFKA_CLIENT_ADVERTISED:-kafka:9092}
CONTROLLER=${KAFKA_CONTROLLER_LISTENER:-127.0.0.1:9093}
HOST_PORT=${KAFKA_HOST_PORT:-}
MECH=SCRAM-SHA-256
ETC=/tmp/cdc-kafka
mkdir -p "$ETC" && chmod 700 "$ETC"
rm -f /tmp/cdc-broker-ready
scram() { echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$2\";"; }

listeners="CLIENT://$CLIENT,CONTROLLER://$CONTROLLER"
advertised="CLIENT://$ADVERTISED"
protocols="CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT"
self="127.0.0.1:${CLIENT##*:}"
if [ -n "$HOST_PORT" ]; then
  listeners="$listeners,HOST://0.0.0.0:$HOST_PORT"
  advertised="$advertised,HOST://127.0.0.1:$HOST_PORT"
  protocols="$protocols,HOST:SASL_PLAINTEXT"
  self="127.0.0.1:$HOST_PORT"
fi
umask 077
cat > "$ETC/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
sasl.enabled.mechanisms=$MECH
sasl.mechanism.inter.broker.protocol=$MECH
sasl.mechanism.controller.protocol=PLAIN
listener.name.client.sasl.enabled.mechanisms=$MECH
listener.name.client.scram-sha-256.sasl.jaas.config=$(scram cdc-admin "$CDC_KAFKA_ADMIN_PASSWORD")
listener.name.host.sasl.enabled.mechanisms=$MECH
listener.name.host.scram-sha-256.sasl.jaas.config=$(scram cdc-admin "$CDC_KAFKA_ADMIN_PASSWORD")
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="cdc-controller" password="$CDC_KAFKA_CONTROLLER_PASSWORD" user_cdc-controller="$CDC_KAFKA_CONTROLLER_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:cdc-admin;User:cdc-controller
log.dirs=$KAFKA_DATA
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
PROPS
cat > "$ETC/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$MECH
sasl.jaas.config=$(scram cdc-admin "$CDC_KAFKA_ADMIN_PASSWORD")
PROPS

JAVA=(java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/cdc/log4j2.properties
      -cp "/opt/cdc/lib/kafka/*")
if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
  cid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  "${JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cid" -c "$ETC/server.properties" \
    --add-scram "$MECH=[name=cdc-admin,password=$CDC_KAFKA_ADMIN_PASSWORD]" \
    --add-scram "$MECH=[name=cdc-connect,password=$CDC_KAFKA_CONNECT_PASSWORD]"
fi

"${JAVA[@]}" kafka.Kafka "$ETC/server.properties" &
broker=$!
trap 'kill -TERM $broker; wait $broker' TERM INT
# Connect's bootstrap ACLs, as connectors/acls.py connect_grants() gives them (idempotent)
for _ in $(seq 1 60); do
  if "${JAVA[@]}" org.apache.kafka.tools.AclCommand --bootstrap-server "$self" --command-config "$ETC/admin.properties" \
       --add --allow-principal User:cdc-connect --operation All --topic _connect- --resource-pattern-type prefixed \
       >/dev/null 2>&1 \
     && "${JAVA[@]}" org.apache.kafka.tools.AclCommand --bootstrap-server "$self" --command-config "$ETC/admin.properties" \
       --add --allow-principal User:cdc-connect --operation Read --group cdc-connect >/dev/null 2>&1; then
    touch /tmp/cdc-broker-ready
    break
  fi
  kill -0 $broker 2>/dev/null || break
  sleep 2
done
wait $broker
