"""The HTTP adapter: routing, content negotiation and error mapping; no business logic."""
