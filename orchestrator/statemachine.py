"""Explicit transition tables. Anything not listed is illegal and raises."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from orchestrator.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class StateMachine(Generic[S]):
    def __init__(self, entity: str, transitions: Mapping[S, frozenset[S]]) -> None:
        self.entity = entity
        self.transitions = transitions

    def allowed(self, current: S, target: S) -> bool:
        return target in self.transitions.get(current, frozenset())

    def check(self, current: S, target: S) -> None:
        if not self.allowed(current, target):
            raise IllegalTransition(self.entity, str(current), str(target))

    def is_terminal(self, state: S) -> bool:
        return not self.transitions.get(state)
