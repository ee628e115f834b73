"""The unified inbox: conversations and messages across channels, delivery statuses, notes and canned
replies. Front door: `inbox/service.py` (`ingest()` for everything that comes in, `send()` for
what goes out)."""
