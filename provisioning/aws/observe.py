"""Call observers: tests and benchmarks count AWS calls at the boto3 layer."""

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_observers: list[Callable[[str, str], None]] = []


def _notify(model: Any, **kwargs: Any) -> None:
    service = model.service_model.endpoint_prefix
    for observer in list(_observers):
        observer(service, model.name)


WRITE_PREFIXES = (
    "Create",
    "Update",
    "Put",
    "Attach",
    "Add",
    "Tag",
    "Untag",
    "Delete",
    "Detach",
    "Remove",
    "Set",
    "Enable",
    "Deactivate",
    "Terminate",
)


def is_write(call: str) -> bool:
    """Whether an observed "service:Operation" changes AWS."""
    return call.split(":", 1)[1].startswith(WRITE_PREFIXES)


@contextlib.contextmanager
def observe_calls() -> Iterator[list[str]]:
    """Collect "service:Operation" for every AWS call made inside the block."""
    calls: list[str] = []

    def observer(service: str, operation: str) -> None:
        calls.append(f"{service}:{operation}")

    _observers.append(observer)
    try:
        yield calls
    finally:
        _observers.remove(observer)
