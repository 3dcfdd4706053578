"""Registry of body generators: one entry per body class, dispatch by id.

A generator is `fn(seed: int, ranges: R) -> Embodiment` where `R` is a kw_only dataclass
whose fields are (low, high) tuples. Contract checked by the tests for every entry: the
returned `Embodiment.params` has one key per field of `R`, each value (a number or a list
of numbers) inside that field's bounds, and the same seed gives the same MJCF.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .embodiment import Embodiment


@dataclass(frozen=True)
class Generator:
    body_class: str
    fn: Callable[..., Embodiment]
    ranges_type: type
    summary: str

    def sample(self, seed: int = 0, ranges: Any = None, **overrides: tuple) -> Embodiment:
        ranges = ranges if ranges is not None else self.ranges_type()
        if overrides:
            ranges = dataclasses.replace(ranges, **overrides)
        return self.fn(int(seed), ranges)


_GENERATORS: dict[str, Generator] = {}


def register(body_class: str, ranges_type: type, summary: str) -> Callable:
    """Decorator: register `fn` as the generator of `body_class` (duplicates raise)."""

    def deco(fn: Callable[..., Embodiment]) -> Callable[..., Embodiment]:
        if body_class in _GENERATORS:
            raise ValueError(f"body generator {body_class!r} is registered twice")
        _GENERATORS[body_class] = Generator(body_class, fn, ranges_type, summary)
        return fn

    return deco


def get(body_class: str) -> Generator:
    _load_builtin()
    try:
        return _GENERATORS[body_class]
    except KeyError:
        raise KeyError(
            f"unknown body class {body_class!r}; expected one of {sorted(_GENERATORS)}"
        ) from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_GENERATORS)


def sample(body_class: str, seed: int = 0, **overrides: tuple) -> Embodiment:
    """Sample one body of `body_class`; keyword overrides replace ranges fields."""
    return get(body_class).sample(seed, **overrides)


def _load_builtin() -> None:
    # Importing the generator modules registers them.
    from . import arm, humanoid, quadruped, wheeled  # noqa: F401
