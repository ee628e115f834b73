"""WhatsApp and SMS through Twilio (the official `twilio` SDK): one adapter for both channels."""
