"""Developer tools: the Telegram stand-in and the demo. Not part of the installed package."""
