"""The IoT agent: devices publish measurements (MQTT or HTTP), mappings turn them into entities."""
