"""Viber bots through the REST bot API (`Settings.viber_api_base`), spoken with aiohttp; viberbot supplies
the outbound message models."""
