"""The NGSI-LD information model and operations, free of any web framework."""
