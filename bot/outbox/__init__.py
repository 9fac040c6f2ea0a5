"""The outbox: what is queued to send (store), the sender that drains it (dispatcher)."""
