"""The local stack launcher: PostgreSQL per service, Kafka (KRaft) and Kafka Connect with
Debezium, started natively from Debian's PostgreSQL binaries and Maven Central jars."""
