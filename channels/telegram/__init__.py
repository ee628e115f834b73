"""Telegram bots through aiogram 3 in webhook mode."""
