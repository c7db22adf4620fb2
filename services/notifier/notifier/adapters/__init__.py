"""Real implementations of the notifier's ports: SMTP, the file outbox, the webhook client."""
