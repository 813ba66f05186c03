"""byourside server: the Agent Calling API, its call runtime, and their adapters."""

__version__ = "0.1.0"
