#!/bin/sh
# The container's entrypoint (and a plain way to start the bot anywhere): bring the database schema up to date,
# then run the bot in the foreground, so SIGTERM reaches it and it shuts down cleanly.
# Configuration comes from the environment: BOT_TOKEN, ENCRYPTION_KEY, DATABASE_URL (see the README).
set -eu
PYTHON="${PYTHON:-python}"
"$PYTHON" -m bot db upgrade
exec "$PYTHON" -m bot run "$@"
