"""Celery's priority scales mapped onto conveyor's 0–9.

conveyor's brokers keep ten priority bands, 0 to 9, higher first. Celery on RabbitMQ lets a
queue take priorities 0 to its `x-max-priority` (`task_queue_max_priority` for every queue, or
`Queue(..., max_priority=N)` for one), at most 255. When a scale is set, every priority a caller
gives (`apply_async(priority=)`, the task's `priority=`, a route's, `task_default_priority`) is
read on it and mapped to conveyor's band `round(priority * 9 / max_priority)`, halves rounding
up: order is kept, the top of the scale is 9 and 0 stays 0. With `max_priority=255`: 0–14 → 0,
15–42 → 1, …, 241–255 → 9; with `max_priority=10`: 0 → 0, 1 → 1, 2 → 2, 3 → 3, 4 → 4, 5 → 5,
6 → 5, 7 → 6, 8 → 7, 9 → 8, 10 → 9. With no scale set, priorities are conveyor's own 0–9.

A priority above the scale is refused (RabbitMQ would quietly treat it as the maximum).
"""

from __future__ import annotations

from .errors import ConfigurationError

BANDS = 9  # conveyor's highest priority
AMQP_MAX_PRIORITY = 255  # the largest x-max-priority RabbitMQ accepts


def check_max_priority(name: str, value: object) -> int | None:
    """None (conveyor's own 0–9) or a scale from 1 to 255."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= AMQP_MAX_PRIORITY:
        raise ConfigurationError(
            f"{name} must be an integer from 1 to {AMQP_MAX_PRIORITY} (RabbitMQ's x-max-priority) "
            f"or None, got {value!r}"
        )
    return value


def to_band(priority: int, max_priority: int | None, queue: str) -> int:
    """conveyor's band for `priority` given on the scale 0..`max_priority` (None: 0..9) of the
    call's destination, `queue`."""
    if max_priority is None:
        if priority > BANDS:
            raise ConfigurationError(
                f"priority {priority} for queue {queue!r} is above 9, the highest of conveyor's "
                "0–9; to give priorities on a larger scale, as for RabbitMQ, set "
                "task_queue_max_priority (or Queue(..., max_priority=N))"
            )
        return priority
    if priority > max_priority:
        raise ConfigurationError(
            f"priority {priority} for queue {queue!r} is above its max_priority, {max_priority}"
        )
    return (priority * BANDS * 2 + max_priority) // (max_priority * 2)
