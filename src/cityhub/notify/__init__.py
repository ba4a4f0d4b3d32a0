"""Subscriptions at work: match changes, keep them in an outbox, deliver them (HTTP, MQTT)."""
