"""Request handlers, one module per area; each only parses input, calls a room's front door and renders."""
