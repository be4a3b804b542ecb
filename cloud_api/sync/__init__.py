"""MQTT fan-out of signed desired states and ingest of what agents send."""
