"""Channel adapters: one folder per provider (Telegram, Viber, Twilio WhatsApp/SMS, Meta, e-mail, Asterisk,
the website widget), each verifying webhooks, parsing them into the normalised model and sending out."""
