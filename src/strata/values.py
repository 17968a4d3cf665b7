"""``Value``: the base of strata's small immutable record types (what ``@dataclass(frozen=True,
slots=True)`` gave them).

Written out because every command loads these types and importing ``dataclasses`` (which imports
``inspect``, ``ast``, ``dis`` and ``tokenize``) costs a listing command about a tenth of its run. A
subclass names its fields in ``__slots__`` (sorted; ``repr`` shows them in that order) and sets them in ``__init__`` with
``self._init(field=value, ...)``; afterwards they cannot be assigned. Equality and hashing cover
``_compare`` (every field unless narrowed); ``repr`` leaves out ``_hidden``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["Value"]


class Value:
    __slots__: tuple[str, ...] = ()
    _compare: tuple[str, ...] = ()
    _hidden: tuple[str, ...] = ()

    def _init(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._compare or self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Value):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__ if f not in self._hidden)
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), {f: getattr(self, f) for f in self.__slots__})


def _rebuild(cls: type[Value], fields: dict[str, Any]) -> Value:
    obj = object.__new__(cls)
    obj._init(**fields)
    return obj
