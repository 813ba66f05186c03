"""Signed webhooks with at-least-once delivery.

- ``events``: the outbox row written with each status change (payload snapshot); the
  store runs ``enqueue_for_transition`` as the hook services.py hands ``CallRepo``.
- ``signing``: ``X-BYS-Signature`` headers, secret rotation grace.
- ``sender``: one HTTP attempt, SSRF-checked and pinned to the checked address.
- ``store``: claiming due deliveries with leases, recording attempts, listing, secrets.
- ``delivery``: the loop that runs beside the call worker, and the retry schedule.
- ``listen``: the local receiver behind ``byourside webhooks listen``.

The (ext) HTTP endpoints are api/routes/webhooks.py; the commands are cli/webhooks.py.
"""
