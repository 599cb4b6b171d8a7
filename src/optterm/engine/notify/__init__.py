"""Notifications: channel specs (channels), keeping their URLs out of logs (redact) and the
outbox dispatcher that sends through Apprise."""
