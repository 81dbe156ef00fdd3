"""Case-insensitive, multi-valued header fields that keep the order they came in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """Header fields as (name, value) pairs; lookups ignore case, order and repeats are kept.

    Request headers arrive with lower-case names; response headers keep the case they were set with.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, in order."""
        name = name.lower()
        return [value for key, value in self._items if key.lower() == name]

    def set(self, name: str, value: str) -> None:
        """Replace every field called `name` by one with `value` (in the place of the first)."""
        lower = name.lower()
        items = self._items
        for i, (key, _) in enumerate(items):
            if key.lower() == lower:
                items[i] = (name, value)
                self._items = items[: i + 1] + [kv for kv in items[i + 1 :] if kv[0].lower() != lower]
                return
        items.append((name, value))

    def add(self, name: str, value: str) -> None:
        """Add a field, keeping any others of the same name."""
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        """Remove every field called `name`."""
        lower = name.lower()
        self._items = [kv for kv in self._items if kv[0].lower() != lower]

    def setdefault(self, name: str, value: str) -> str:
        current = self.get(name)
        if current is None:
            self._items.append((name, value))
            return value
        return current

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
