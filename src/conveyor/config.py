"""Typed settings under Celery's names.

`Settings` is a frozen dataclass: one typed field per setting. `Config` (the app's `app.conf`)
holds the current `Settings` and swaps in a validated copy on every change, so a typo or a bad
value fails where it is written, never later in a worker.

Names are Celery's lowercase names (`task_acks_late`); `config_from_object(obj,
namespace="CELERY")` reads Django-style `CELERY_TASK_ACKS_LATE`, and Celery 3's uppercase names
(`CELERYD_PREFETCH_MULTIPLIER`, `BROKER_URL`…) are mapped too — where Celery would silently skip
a `CELERYD_*` name under the `CELERY` namespace, conveyor reads it. An unknown name is an error
naming the closest known one. A known setting whose behaviour is not built yet is refused with
NotImplementedError when set to anything but its default, so nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._names import did_you_mean
from ._sqlite import check_file_mode
from ._urls import result_store_url, safe_url
from .accepted import ACCEPTED, REFUSED_TRANSPORT_OPTIONS, TRANSPORT_OPTIONS, check_accepted
from .annotations import prepare as prepare_annotations
from .bindings import check_exchange_type
from .bounds import check_queue_name, check_seconds, shown
from .compression import DEFAULT_LIMIT, check_method
from .errors import ConfigurationError
from .options import check_compression, check_priority
from .priorities import check_max_priority
from .ratelimit import parse_rate
from .routing import Queue, Rule, parse_queues, parse_routes
from .scheduler.schedule import parse_beat_schedule

DEFAULT_SQLITE_URL = "sqlite:///conveyor.db"
ENV_BROKER = "CONVEYOR_BROKER_URL"
ENV_BACKEND = "CONVEYOR_RESULT_BACKEND"
#: Celery's variables, read when conveyor's are unset.
CELERY_ENV_BROKER = "CELERY_BROKER_URL"
CELERY_ENV_BACKEND = "CELERY_RESULT_BACKEND"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting conveyor knows, with its default."""

    def __repr__(self) -> str:  # the URLs shown masked: reprs end up in logs and tracebacks
        fields = ", ".join(
            f"{f.name}={_shown(f.name, getattr(self, f.name))!r}" for f in dataclasses.fields(self)
        )
        return f"Settings({fields})"

    broker_url: str | None = None
    result_backend: str | None = None
    task_default_queue: str = "celery"  # Celery's name: `-Q celery` workers find unrouted calls
    task_default_priority: int | None = None
    # Celery's AMQP topology, mapped onto queues by name (conveyor.bindings, conveyor.priorities)
    task_create_missing_queues: bool = True  # False: an undeclared destination is an error
    task_default_exchange: str | None = None  # None: task_default_queue, as in Celery
    task_default_exchange_type: str = "direct"
    task_default_routing_key: str | None = None  # None: task_default_queue, as in Celery
    task_queue_max_priority: int | None = None  # the scale of callers' priorities (None: 0–9)
    imports: tuple[str, ...] = ()  # task modules the app imports when finalized, as in Celery
    include: tuple[str, ...] = ()  # imported after `imports` (beside Conveyor(include=...))
    task_acks_late: bool = True
    task_reject_on_worker_lost: bool | None = None
    task_track_started: bool = False  # Celery's default: a running call reads PENDING
    task_ignore_result: bool = False
    task_always_eager: bool = False
    task_eager_propagates: bool = False
    # Results area: eager calls' outcomes go to the configured result store only when True;
    # otherwise to a store of the process's own, as Celery keeps them (see app.urls).
    task_store_eager_result: bool = False
    task_serializer: str = "json"
    result_serializer: str = "json"
    accept_content: tuple[str, ...] = ("json",)
    result_accept_content: tuple[str, ...] | None = None
    task_message_max_size: int = 1024 * 1024
    task_max_deliveries: int = 5
    task_idempotency_window: float = 3600.0
    visibility_timeout: float = 30.0
    broker_transport_options: Mapping[str, Any] = field(default_factory=dict)
    result_expires: float | None = 86400.0
    database_create_tables_at_setup: bool = True
    broker_retry_budget: float = 10.0
    database_file_mode: int = 0o600  # permissions of a SQLite file conveyor creates
    timezone: str = "UTC"
    enable_utc: bool = True
    worker_concurrency: int | None = None
    worker_pool: str = "process"
    worker_log_format: str = "text"  # or "json": one JSON object per log line
    worker_prefetch_multiplier: int = 1
    worker_max_tasks_per_child: int | None = None
    worker_shutdown_timeout: float = 30.0
    worker_metrics_port: int | None = None  # serve /metrics on this port (None: off)
    metrics_celery_names: bool = False  # also export the Celery exporter's metric names
    task_time_limit: float | None = None
    task_soft_time_limit: float | None = None
    task_default_rate_limit: str | None = None
    task_dead_letter_on_failure: bool = False
    dead_letter_retention: float | None = 14 * 86400.0
    worker_max_memory_per_child: int | None = None
    task_routes: tuple[Rule, ...] = ()
    task_queues: tuple[Queue, ...] | None = None
    task_routes_strict: bool = True
    worker_queue_order: str = "strict"
    result_compression: str | None = None
    result_compression_threshold: int = 1024
    result_max_size: int = DEFAULT_LIMIT  # bytes of a return value, encoded (uncompressed)
    chord_max_size: int = 10_000  # header members of one chord
    # canvas: a chord's errbacks also on each header member (Celery's setting, default off)
    task_allow_error_cb_on_chord_header: bool = False
    beat_schedule: Mapping[str, Any] = field(default_factory=dict)
    beat_lease_seconds: float = 10.0
    beat_max_loop_interval: float = 5.0
    beat_misfire_grace_time: float = 60.0
    beat_scheduler: str | None = None
    beat_schedule_filename: str | None = None
    result_extended: bool = False  # outcomes also keep the call's args and kwargs
    worker_send_task_events: bool = False  # workers publish task-* events (conveyor events)
    task_send_sent_event: bool = False  # producers publish task-sent (conveyor events)
    # Celery's task_annotations: options and hooks per task name or "*" (conveyor.annotations).
    task_annotations: tuple[Any, ...] = ()
    # Celery's task_compression: message bodies compressed with gzip/zstd ("zlib": gzip).
    task_compression: str | None = None
    # Known, but their behaviour is not built yet: setting them is refused (see _NOT_BUILT).
    worker_autoscale: Any = None


SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))
_DEFAULTS = Settings()

_NOT_BUILT: Mapping[str, str] = {
    "worker_autoscale": "the autoscaler",
}

#: Celery 3 uppercase names still found in settings files.
OLD_NAMES: Mapping[str, str] = {
    "BROKER_URL": "broker_url",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_PRIORITY": "task_default_priority",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_REJECT_ON_WORKER_LOST": "task_reject_on_worker_lost",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERY_RESULT_COMPRESSION": "result_compression",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_IMPORTS": "imports",
    "CELERYD_LOG_FORMAT": "worker_log_format",
    "CELERY_INCLUDE": "include",
    "CELERY_CREATE_MISSING_QUEUES": "task_create_missing_queues",
    "CELERY_DEFAULT_EXCHANGE": "task_default_exchange",
    "CELERY_DEFAULT_EXCHANGE_TYPE": "task_default_exchange_type",
    "CELERY_DEFAULT_ROUTING_KEY": "task_default_routing_key",
    "CELERY_DEFAULT_DELIVERY_MODE": "task_default_delivery_mode",
    "CELERY_RESULT_PERSISTENT": "result_persistent",
    "CELERY_EVENT_QUEUE_EXPIRES": "event_queue_expires",
    "CELERY_EVENT_QUEUE_TTL": "event_queue_ttl",
    "CELERY_EVENT_SERIALIZER": "event_serializer",
    "CELERY_REDIS_MAX_CONNECTIONS": "redis_max_connections",
    "CELERY_ENABLE_REMOTE_CONTROL": "worker_enable_remote_control",
    "BROKER_CONNECTION_RETRY": "broker_connection_retry",
    "BROKER_CONNECTION_MAX_RETRIES": "broker_connection_max_retries",
    "BROKER_CONNECTION_TIMEOUT": "broker_connection_timeout",
    "BROKER_HEARTBEAT": "broker_heartbeat",
    "BROKER_HEARTBEAT_CHECKRATE": "broker_heartbeat_checkrate",
    "BROKER_POOL_LIMIT": "broker_pool_limit",
    "CELERYD_TIMER_PRECISION": "worker_timer_precision",
    "CELERYD_WORKER_LOST_WAIT": "worker_lost_wait",
    "CELERYBEAT_SYNC_EVERY": "beat_sync_every",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_AUTOSCALE": "worker_autoscale",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYBEAT_SCHEDULE_FILENAME": "beat_schedule_filename",
}

POOL_NAMES = {
    "process": "process",
    "prefork": "process",
    "threads": "threads",
    "thread": "threads",
    "solo": "solo",
}
_TRANSPORT_OPTIONS = frozenset({"visibility_timeout"})


def _positive(name: str, value: Any, *, allow_none: bool = False, integer: bool = False) -> Any:
    """A positive integer, or (not `integer`) positive seconds up to bounds.MAX_SECONDS."""
    if value is None and allow_none:
        return None
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(
                f"setting {name} must be a positive integer, got {shown(value)}"
            )
        return value
    try:
        check_seconds(name, value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"setting {exc}") from None
    return value


def _validate(name: str, value: Any) -> Any:
    """Check and normalise one value; raise ConfigurationError or NotImplementedError."""
    if name in _NOT_BUILT and value != getattr(_DEFAULTS, name) and value not in (None, {}, ()):
        raise NotImplementedError(
            f"setting {name} is not supported yet ({_NOT_BUILT[name]} are not built); remove "
            "it rather than rely on it being enforced"
        )
    checker = _CHECKS.get(name)
    return checker(name, value) if checker else value


def _port(name: str, value: Any) -> Any:
    """None, or a TCP port (1 to 65535)."""
    if value is not None and _positive(name, value, integer=True) > 65535:
        raise ConfigurationError(f"setting {name} must be a TCP port, 1 to 65535; got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"setting {name} must be True or False; got {value!r}")
    return value


def _check_serializer(name: str, value: Any) -> Any:
    values = [value] if isinstance(value, str) else list(value or [])
    if any(v not in ("json", "application/json") for v in values):
        raise ConfigurationError(
            f"setting {name}={value!r}: conveyor carries messages and results as JSON only"
        )
    return tuple(values) if not isinstance(value, str) else value


def _check_pool(name: str, value: Any) -> str:
    if value not in POOL_NAMES:
        raise ConfigurationError(f"{name}={value!r}: use one of process, prefork, threads, solo")
    return POOL_NAMES[value]


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r}: use one of {', '.join(allowed)}")
    return str(value)


def _check_timezone(name: str, value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"{name}={value!r} is not a known time zone") from exc
    return str(value)


def _check_transport(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a dict")
    known = _TRANSPORT_OPTIONS | set(TRANSPORT_OPTIONS)
    for key in value:
        if key in REFUSED_TRANSPORT_OPTIONS:
            raise ConfigurationError(
                f"{name}[{key!r}] is refused: {REFUSED_TRANSPORT_OPTIONS[key]}"
            )
        if key not in known:
            raise ConfigurationError(
                f"{name}[{key!r}] is not supported{did_you_mean(key, known)}; "
                f"supported keys: {', '.join(sorted(known))}"
            )
    if "visibility_timeout" in value:
        _positive("broker_transport_options['visibility_timeout']", value["visibility_timeout"])
    return dict(value)


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"setting {name} must be a URL string; got {value!r}")
    return value


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"setting {name} must be a non-empty string; got {value!r}")
    return value


def _modules(name: str, value: Any) -> tuple[str, ...]:
    """Module names: one string, or a list or tuple of them."""
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(m, str) and m for m in names):
        raise ConfigurationError(
            f"setting {name} must be a module name or a list of them, such as "
            f"('proj.tasks',); got {value!r}"
        )
    return tuple(names)


def _log_format(name: str, value: Any) -> str:
    """ "text" or "json"; Celery's logging format strings are refused saying what to use."""
    if isinstance(value, str) and "%(" in value:
        raise ConfigurationError(
            f"{name}={value!r} is a logging format string, as Celery's {name} is; conveyor's "
            "chooses 'text' (Celery's default format) or 'json' (one JSON object per line), "
            "and custom format strings are not supported: remove the setting"
        )
    return _one_of(name, value, ("text", "json"))


#: Celery reads these as task_default_queue when they are unset.
_FROM_DEFAULT_QUEUE = frozenset({"task_default_exchange", "task_default_routing_key"})

_CHECKS: Mapping[str, Any] = {
    "task_default_queue": lambda n, v: check_queue_name(v, n),
    "task_default_priority": lambda n, v: None if v is None else check_priority(v),
    "result_backend": lambda n, v: None if v is None else (result_store_url(_url(n, v), ""), v)[1],
    "task_create_missing_queues": _flag,
    "task_default_exchange": lambda n, v: None if v is None else _name(n, v),
    "task_default_exchange_type": check_exchange_type,
    "task_default_routing_key": lambda n, v: None if v is None else _name(n, v),
    "task_queue_max_priority": check_max_priority,
    "imports": _modules,
    "include": _modules,
    "task_serializer": _check_serializer,
    "result_serializer": _check_serializer,
    "accept_content": _check_serializer,
    "result_accept_content": lambda n, v: None if v is None else _check_serializer(n, v),
    "task_message_max_size": lambda n, v: _positive(n, v, integer=True),
    "task_max_deliveries": lambda n, v: _positive(n, v, integer=True),
    "task_idempotency_window": _positive,
    "visibility_timeout": _positive,
    "broker_retry_budget": _positive,
    "database_file_mode": lambda n, v: check_file_mode(v),
    "result_expires": lambda n, v: _positive(
        n, v.total_seconds() if hasattr(v, "total_seconds") else v, allow_none=True
    ),
    "worker_concurrency": lambda n, v: _positive(n, v, allow_none=True, integer=True),
    "worker_prefetch_multiplier": lambda n, v: _positive(n, v, integer=True),
    "worker_max_tasks_per_child": lambda n, v: _positive(n, v, allow_none=True, integer=True),
    "worker_shutdown_timeout": _positive,
    "worker_metrics_port": _port,
    "metrics_celery_names": _flag,
    "worker_send_task_events": _flag,
    "task_send_sent_event": _flag,
    "worker_max_memory_per_child": lambda n, v: _positive(n, v, allow_none=True, integer=True),
    "task_time_limit": lambda n, v: _positive(n, v, allow_none=True),
    "task_soft_time_limit": lambda n, v: _positive(n, v, allow_none=True),
    "task_default_rate_limit": lambda n, v: (parse_rate(v, n), v)[1],
    "dead_letter_retention": lambda n, v: _positive(n, v, allow_none=True),
    "task_routes": lambda n, v: parse_routes(v),
    "task_queues": lambda n, v: parse_queues(v),
    "worker_pool": _check_pool,
    "worker_queue_order": lambda n, v: _one_of(n, v, ("strict", "weighted")),
    "worker_log_format": _log_format,
    "timezone": _check_timezone,
    "broker_transport_options": _check_transport,
    "result_compression": check_method,
    "result_compression_threshold": lambda n, v: _positive(n, v, integer=True),
    "result_max_size": lambda n, v: _positive(n, v, integer=True),
    "chord_max_size": lambda n, v: _positive(n, v, integer=True),
    "task_allow_error_cb_on_chord_header": _flag,
    "beat_schedule": lambda n, v: (parse_beat_schedule(v), dict(v))[1],
    "beat_lease_seconds": _positive,
    "beat_max_loop_interval": _positive,
    "beat_misfire_grace_time": _positive,
    "task_annotations": lambda n, v: prepare_annotations(v),
    "task_compression": lambda n, v: (check_compression(v, n), v)[1],
}


def unknown_setting(name: str) -> ConfigurationError:
    known = SETTING_NAMES | set(OLD_NAMES) | set(ACCEPTED)
    return ConfigurationError(f"unknown setting {name!r}{did_you_mean(name, known)}")


class Config:
    """The app's settings (`app.conf`): attribute and item access, `update`, and loading from
    objects. Every write is validated; reads return the typed current value."""

    def __init__(self) -> None:
        object.__setattr__(self, "_settings", Settings())
        object.__setattr__(self, "_accepted", {})  # values of ACCEPTED settings given

    @property
    def settings(self) -> Settings:
        """The current settings as a frozen, typed snapshot."""
        s: Settings = object.__getattribute__(self, "_settings")
        return s

    def update(self, mapping: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set several settings at once; all are validated before any is applied."""
        changes: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        for name, raw in {**(mapping or {}), **kwargs}.items():
            key = OLD_NAMES.get(name, name)
            if key not in SETTING_NAMES and key not in ACCEPTED:
                raise unknown_setting(name)
            value = check_accepted(key, raw) if key in ACCEPTED else _validate(key, raw)
            if key in changes and changes[key] != value:
                raise ConfigurationError(
                    f"setting {key} is given twice with different values: {given_as[key]}="
                    f"{_shown(key, changes[key])!r} and {name}={_shown(key, value)!r}; keep one"
                )
            changes[key], given_as[key] = value, name
        accepted = {k: changes.pop(k) for k in list(changes) if k in ACCEPTED}
        object.__setattr__(self, "_settings", dataclasses.replace(self.settings, **changes))
        self._given.update(accepted)

    @property
    def _given(self) -> dict[str, Any]:
        given: dict[str, Any] = object.__getattribute__(self, "_accepted")
        return given

    def config_from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Read settings from an object, a dict, a module path ("proj.settings") or Celery's
        "module:attribute" form ("django.conf:settings").

        A dict's keys are all settings (an unknown key is an error); with a namespace, only
        its keys under that prefix are read, as for an object.

        With `namespace="CELERY"` only names starting with `CELERY` are read (so a Django
        settings module works unchanged); without one, lowercase names and Celery 3 uppercase
        names are read. Modules, classes, functions and `_private` names are skipped.
        """
        if isinstance(obj, str):
            module_name, _, attr = obj.partition(":")
            obj = importlib.import_module(module_name)
            for part in filter(None, attr.split(".")):
                obj = getattr(obj, part)
        self.update(dict(_settings_in(obj, namespace)))

    def __getattr__(self, name: str) -> Any:
        if name in ACCEPTED:
            return self._given.get(name, ACCEPTED[name].default)
        try:
            value = getattr(self.settings, name)
        except AttributeError:
            raise unknown_setting(name) from None
        if value is None and name in _FROM_DEFAULT_QUEUE:
            return self.settings.task_default_queue
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(OLD_NAMES.get(name, name))

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def get(self, name: str, default: Any = None) -> Any:
        key = OLD_NAMES.get(name, name)
        return self.__getattr__(key) if key in SETTING_NAMES or key in ACCEPTED else default

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(SETTING_NAMES | set(ACCEPTED)))

    def __repr__(self) -> str:
        changed = {
            f.name: _shown(f.name, getattr(self.settings, f.name))
            for f in dataclasses.fields(Settings)
            if getattr(self.settings, f.name) != getattr(_DEFAULTS, f.name)
        }
        changed.update(self._given)
        return f"<Config {changed}>"


_URL_SETTINGS = frozenset({"broker_url", "result_backend"})


def _shown(name: str, value: Any) -> Any:
    """A setting's value as reprs show it: URLs without their secrets."""
    return safe_url(value) if name in _URL_SETTINGS and isinstance(value, str) else value


def _settings_in(obj: Any, namespace: str | None) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        yield from _mapping_settings(obj, namespace)
        return
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        value = getattr(obj, attr)
        if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
            continue
        yield from _named(attr, value, namespace)


def _mapping_settings(obj: Mapping[Any, Any], namespace: str | None) -> Iterator[tuple[str, Any]]:
    """A dict's settings (Flask's `config_from_object(app.config["CELERY"])`): without a
    namespace every key is a setting, so an unknown or misspelt one is an error, never skipped."""
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"setting names are strings; got {key!r} in the dict given")
        if namespace:
            yield from _named(key, value, namespace)
        else:
            yield key, value


def _named(attr: str, value: Any, namespace: str | None) -> Iterator[tuple[str, Any]]:
    """The setting `attr` names, under Celery's naming rules (see config_from_object)."""
    if namespace:
        prefix = namespace.upper() + "_"
        if attr in OLD_NAMES and attr.startswith(namespace.upper()):
            yield attr, value
        elif attr.startswith(prefix):
            yield attr[len(prefix) :].lower(), value
        elif attr.startswith((namespace.upper() + "D_", namespace.upper() + "BEAT_")):
            yield attr, value  # an old-style name conveyor does not know: reported
    elif attr.islower() or attr in OLD_NAMES:
        yield attr, value


def lease_seconds(settings: Settings) -> float:
    """The lease length: `broker_transport_options["visibility_timeout"]` if given (Celery's
    spelling), else `visibility_timeout`."""
    return float(
        settings.broker_transport_options.get("visibility_timeout", settings.visibility_timeout)
    )


def _env(*names: str) -> str | None:
    """The first of the environment variables `names` that is set and not empty."""
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def resolve_urls(settings: Settings, broker: str | None, backend: str | None) -> tuple[str, str]:
    """The broker and result-store URLs in effect.

    Explicit arguments and settings win; then CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND,
    then Celery's CELERY_BROKER_URL / CELERY_RESULT_BACKEND (deployments set them for Celery,
    which reads them without a line of code; a producer falling back to a local SQLite file
    instead would strand its calls); then the embedded SQLite file `./conveyor.db`. With no
    result store named, results live beside the broker (same URL). Celery's `db+sqlite://` and
    `db+postgresql://` result URLs name the store of the same database, and `rpc://` the store
    beside the broker (`_urls.result_store_url`).
    """
    broker_url = (
        broker or settings.broker_url or _env(ENV_BROKER, CELERY_ENV_BROKER) or DEFAULT_SQLITE_URL
    )
    named = backend or settings.result_backend or _env(ENV_BACKEND, CELERY_ENV_BACKEND)
    return broker_url, result_store_url(named, broker_url) if named else broker_url
