"""A fleet: one engine process per account, started, watched, restarted and stopped by one supervisor process."""
