"""Facebook Messenger and Instagram Direct through the Meta Graph API (Messenger Platform), over aiohttp."""
