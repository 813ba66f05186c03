"""The LLM-driven agent: an OpenAI-compatible chat-completions provider and the brain built on it."""
