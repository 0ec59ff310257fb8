"""Alert sinks: warning and critical events sent to a webhook, a Telegram chat or a Discord channel."""
