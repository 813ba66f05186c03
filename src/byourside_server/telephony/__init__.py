"""Telephony port and its providers (the phone simulator is the default)."""
