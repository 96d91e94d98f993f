"""Celery's `solar(event, lat, lon)` schedule: fire at a solar event — sunrise, sunset, solar
noon, or dawn and dusk at the civil, nautical or astronomical twilight — at a place on Earth.

The times come from astral (the `solar` extra: `pip install 'conveyor[solar]'`), a small,
maintained, pure-Python library; Celery uses ephem. Both place sunrise and sunset where the
sun's upper limb meets the horizon, with standard refraction (Celery's horizon of -0:34), and
dawn and dusk where the sun's centre is 6, 12 or 18 degrees below it; the two agree to within a
minute. Fire times are rounded down to the second, so every scheduler computes the same fire
(and the same message id). On a day the event does not happen (no sunset in a polar summer)
there is no fire; the next is on the next day it happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from ..errors import ConfigurationError

# event -> (astral function, depression in degrees for dawn and dusk)
_EVENTS: Mapping[str, tuple[str, float | None]] = {
    "dawn_astronomical": ("dawn", 18.0),
    "dawn_nautical": ("dawn", 12.0),
    "dawn_civil": ("dawn", 6.0),
    "sunrise": ("sunrise", None),
    "solar_noon": ("noon", None),
    "sunset": ("sunset", None),
    "dusk_civil": ("dusk", 6.0),
    "dusk_nautical": ("dusk", 12.0),
    "dusk_astronomical": ("dusk", 18.0),
}
EVENTS = tuple(_EVENTS)
_SEARCH_DAYS = 370  # a year and a bit: at the poles some events happen once a year


@dataclass(frozen=True, slots=True)
class solar:  # lower case: Celery's name (`from celery.schedules import solar`)
    """Fires at `event` (one of EVENTS) seen from latitude `lat` and longitude `lon` (degrees;
    north and east positive), every day it happens."""

    event: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if self.event not in _EVENTS:
            raise ConfigurationError(
                f"solar event {self.event!r} is not one of {', '.join(sorted(_EVENTS))}"
            )
        _check_degrees("latitude", self.lat, 90)
        _check_degrees("longitude", self.lon, 180)
        _astral()  # fail here, at definition, when astral is missing

    def __repr__(self) -> str:
        return f"solar({self.event!r}, {self.lat!r}, {self.lon!r})"

    def at(self, day: date) -> datetime | None:
        """The event's time (UTC, whole seconds) on the UTC date `day`, or None when the sun
        does not reach that elevation that day."""
        sun, observer = _astral()
        name, depression = _EVENTS[self.event]
        compute: Callable[..., datetime] = getattr(sun, name)
        extra: dict[str, Any] = {} if depression is None else {"depression": depression}
        try:
            when = compute(observer(self.lat, self.lon, 0.0), day, tzinfo=timezone.utc, **extra)
        except ValueError:  # astral: the sun never reaches the event's elevation that day
            return None
        return when.astimezone(timezone.utc).replace(microsecond=0)

    def next_after(self, after: datetime, zone: tzinfo) -> datetime:
        """The first fire strictly after `after` (`zone` is not used: the event fixes the
        instant). ConfigurationError when the event does not happen within a year here."""
        start = after.astimezone(timezone.utc).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            when = self.at(start + timedelta(days=offset))
            if when is not None and when > after:
                return when
        raise ConfigurationError(
            f"{self!r} does not happen within a year at this place: choose another event"
        )

    def fires_per_day(self) -> float:
        return 1.0

    def describe(self) -> str:
        return f"at {self.event.replace('_', ' ')} (latitude {self.lat}, longitude {self.lon})"


def _check_degrees(what: str, value: object, bound: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"solar {what} must be a number of degrees, not {value!r}")
    if not -bound <= value <= bound:
        raise ConfigurationError(f"solar {what} {value!r} is outside -{bound}..{bound} degrees")


def _astral() -> tuple[Any, Any]:
    """(astral.sun, astral.Observer), or ConfigurationError saying what to install."""
    try:
        import astral
        import astral.sun
    except ImportError:
        raise ConfigurationError(
            "solar schedules compute sun times with astral, which is not installed: "
            "pip install 'conveyor[solar]' (or astral). Without it, a crontab at a fixed "
            "hour is the alternative"
        ) from None
    return astral.sun, astral.Observer
