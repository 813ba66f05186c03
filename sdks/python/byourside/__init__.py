"""byourside: zero-dependency Python client for the Agent Calling API.

    from byourside import Client
    client = Client()                      # BYS_API_KEY, BYS_BASE_URL
    call = client.place_call("+14155550123", "Book a table for two at 7pm")
    done = client.wait_for_call(call["callId"])
    print(done["status"], done["summary"])
"""

from .client import DEFAULT_BASE_URL, TERMINAL_STATUSES, Client
from .errors import ByoursideError
from ._transport import UrllibTransport
from ._version import __version__
from .webhooks import SIGNATURE_HEADER, sign_webhook, verify_webhook

__all__ = [
    "Client",
    "ByoursideError",
    "verify_webhook",
    "sign_webhook",
    "UrllibTransport",
    "TERMINAL_STATUSES",
    "DEFAULT_BASE_URL",
    "SIGNATURE_HEADER",
    "__version__",
]
