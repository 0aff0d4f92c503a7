"""Typed boundaries: every Kafka message is parsed into one of these pydantic models at the edge."""
