"""Guardrails checked before anything is dialled: which destinations a call may go to."""
