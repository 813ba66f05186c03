"""Scenario evaluation: simulated calls with known answers, run against the configured brain."""
