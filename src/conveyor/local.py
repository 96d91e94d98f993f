"""Celery's `current_app` and `current_task`: proxies that look up their object on every use.

`from conveyor import current_app` gives an object that behaves as the current app at the time
it is used (`current_app.conf`, `current_app.send_task(...)`, `current_app.tasks`), so a module
can import it before any app exists. `current_task` behaves as the task running in this thread
or context (a worker's call, or a task called directly), and as None when there is none:
`if current_task: ... current_task.request.id`.

The current app is process-wide in conveyor (Celery keeps one per thread, falling back to a
default app, so a web server's other threads silently see a different, unconfigured app):
the app created last (or made current with `set_current()`), else the one given to
`set_default()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .app import Conveyor
    from .task import Task

T = TypeVar("T")


class Proxy(Generic[T]):
    """Stands in for the object `resolve()` returns when it is used: attribute access, calls,
    item access, iteration, truth, equality, `str` and `repr` all go to that object, and
    `isinstance(proxy, cls)` asks it. `_get_current_object()` gives the object itself."""

    __slots__ = ("__name", "__resolve")
    __resolve: Callable[[], T]
    __name: str

    def __init__(self, resolve: Callable[[], T], name: str) -> None:
        object.__setattr__(self, "_Proxy__resolve", resolve)
        object.__setattr__(self, "_Proxy__name", name)

    def _get_current_object(self) -> T:
        """The object this proxy stands for now (Celery's name for it)."""
        return self.__resolve()

    @property  # type: ignore[misc]  # isinstance() asks the object's class, as Celery's does
    def __class__(self) -> type:
        return type(self._get_current_object())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __dir__(self) -> list[str]:
        return dir(self._get_current_object())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)  # type: ignore[operator]

    def __getitem__(self, key: Any) -> Any:
        return self._get_current_object()[key]  # type: ignore[index]

    def __contains__(self, item: Any) -> bool:
        return item in self._get_current_object()  # type: ignore[operator]

    def __iter__(self) -> Iterator[Any]:
        items: Iterator[Any] = iter(self._get_current_object())  # type: ignore[call-overload]
        return items

    def __len__(self) -> int:
        return len(self._get_current_object())  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self._get_current_object())

    def __eq__(self, other: object) -> bool:
        return bool(self._get_current_object() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._get_current_object() != other)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __str__(self) -> str:
        return str(self._get_current_object())

    def __repr__(self) -> str:
        try:
            return repr(self._get_current_object())
        except ConfigurationError:  # no app yet: a repr must not raise (debuggers call it)
            return f"<{self.__name}: none yet>"


def get_current_app() -> Conveyor:
    """The current app (see the module docstring); ConfigurationError when there is none."""
    from .app import current_app

    return current_app()


def get_current_task() -> Task | None:
    """The task running in this context: the one whose `__call__` or `run` is executing here,
    or the task of the call a worker is running here; None outside any task."""
    from .performing import calling_task

    task = calling_task()
    if task is not None:
        return task
    from .request import current_request

    request = current_request()
    if request is None or request.task is None:
        return None
    from .app import registered_task

    return registered_task(request.task)


current_app: Conveyor = Proxy(get_current_app, "current_app")  # type: ignore[assignment]
current_task: Task | None = Proxy(get_current_task, "current_task")  # type: ignore[assignment]
