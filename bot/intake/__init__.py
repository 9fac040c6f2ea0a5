"""Durable intake: every update is stored in the inbox before Telegram is told it arrived, then handled per
chat in order (chats concurrently), retried when handling fails, and parked, never dropped, when it keeps
failing. `store` is the table; `parse` reads what the raw update says without the database; `processor` and
`polling` drive them (they talk to Telegram)."""
