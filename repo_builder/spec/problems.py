"""A located problem in a spec: where it is (a path of keys and list indexes) and what is wrong.

Validators collect `Problem`s in an `Issues` and raise it; pydantic wraps it in its ValidationError, and
spec/load.py unpacks it and points at the line and column of each problem's value.
"""

from __future__ import annotations

from dataclasses import dataclass

#: a path into the spec document: ("models", 1, "dynamic_batching", "preferred_batch_size", 0)
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    #: point at the key rather than its value (an unknown field)
    key: bool = False


class Issues(ValueError):
    """The problems one validator found, each located relative to the validated object.

    Collect with `add()`, then `raise_if_any()`; a single problem is `raise Issues.one(loc, message)`.
    """

    def __init__(self, problems: list[Problem] | None = None) -> None:
        super().__init__()
        self.problems: list[Problem] = list(problems or [])

    @classmethod
    def one(cls, loc: Loc, message: str) -> Issues:
        return cls([Problem(loc, message)])

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(loc, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise self

    def __str__(self) -> str:
        return "; ".join(p.message for p in self.problems)
