"""The Store port: accounts, keys, numbers, calls, idempotency rows, events and leases.

SQLite (WAL) by default, PostgreSQL for scale-out; the same code runs on both.
"""

from byourside_server.store.database import Database, open_database
from byourside_server.store.records import Account, ApiKeyRecord, CallRecord

__all__ = ["Database", "open_database", "Account", "ApiKeyRecord", "CallRecord"]
