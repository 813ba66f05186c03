"""Responsible outbound calling: scheduling, calling hours in the callee's time zone, the
do-not-call list (with opt-outs heard on calls), and retries by outcome.

``hours`` (the calling-hours window and the callee's time zones), ``retry`` (the retry
policy), ``service`` (``Compliance``: the checks placement, the dial gate and the end of a
call run). The store side is ``store/suppressions.py`` and ``store/compliance.py``.
"""
