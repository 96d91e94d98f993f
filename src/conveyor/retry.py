"""Pure retry policy: how long to wait before retry number N. No I/O, no clock."""

from __future__ import annotations

import random

from .options import TaskOptions


def backoff_delay(options: TaskOptions, retries: int, rng: random.Random | None = None) -> float:
    """Delay before the retry that follows `retries` earlier retries.

    Without `retry_backoff` this is `retry_kwargs["countdown"]` when given, else
    `default_retry_delay`. With it, the delay doubles each time
    from a base (`retry_backoff=True` means 1 s, a number is the base in seconds), is capped by
    `retry_backoff_max`, and with `retry_jitter` is drawn uniformly from [0, delay] ("full
    jitter") so that many failing calls do not retry in lockstep.
    """
    if not options.retry_backoff:
        return float(options.retry_kwargs.get("countdown", options.default_retry_delay))
    base = 1.0 if options.retry_backoff is True else float(options.retry_backoff)
    # The exponent is capped: 2.0 ** 1024 overflows, and 2 ** 64 s is past any backoff maximum.
    delay = min(float(options.retry_backoff_max), base * (2.0 ** min(max(0, retries), 64)))
    if options.retry_jitter:
        delay = (rng or random).uniform(0.0, delay)
    return delay


def autoretry_limit(options: TaskOptions) -> int | None:
    """The max_retries of an automatic retry: `retry_kwargs["max_retries"]` when given (as
    Celery passes it to retry()), else the task's."""
    limit: int | None = options.retry_kwargs.get("max_retries", options.max_retries)
    return limit


def retries_exhausted(max_retries: int | None, retries: int) -> bool:
    """True when a call that already retried `retries` times may not retry again."""
    return max_retries is not None and retries >= max_retries
