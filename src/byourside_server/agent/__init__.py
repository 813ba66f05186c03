"""The agent brain port and its implementations (the offline agent is the default)."""
