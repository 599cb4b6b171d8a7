"""Notifications: channel specs (channels) and the outbox dispatcher that sends through Apprise."""
