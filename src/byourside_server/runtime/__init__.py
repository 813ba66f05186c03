"""The call runtime: workers claim queued calls and compose telephony + brain for each."""
