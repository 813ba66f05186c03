"""Signed webhooks with at-least-once delivery.

- ``events``: the outbox row written with each status change (payload snapshot).
- ``signing``: ``X-BYS-Signature`` headers, secret rotation grace.
- ``sender``: one HTTP attempt, SSRF-checked and pinned to the checked address.
- ``store``: claiming due deliveries with leases, recording attempts, listing, secrets.
- ``delivery``: the loop that runs beside the call worker, and the retry schedule.
- ``api``, ``commands``, ``listen``: the (ext) endpoints and the ``byourside webhooks`` CLI.
"""
