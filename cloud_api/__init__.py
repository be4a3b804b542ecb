"""The cloud: REST API, access-code engine, MQTT fan-out of desired states and ingest."""
