"""Getting data into the hub: batch importers and the IoT agent."""
