"""Who acts: the roles and the actor of every service call. A leaf: it imports nothing of orchestrator.

What an actor may see and do is decided in `orchestrator.policy`, not here.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    requester = "requester"
    ministry_approver = "ministry_approver"
    operator = "operator"
    admin = "admin"
    automation = "automation"


# Roles that act for the whole data centre rather than one ministry.
PLATFORM_ROLES = frozenset({Role.operator, Role.admin})


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, or the system itself (workers, schedules)."""

    user_id: uuid.UUID | None
    username: str
    role: Role | None
    ministry_id: uuid.UUID | None
    # Automation with no ministry reaches every ministry only when created with this flag.
    platform_wide: bool = False

    @property
    def is_system(self) -> bool:
        return self.user_id is None and self.role is None


SYSTEM = Actor(user_id=None, username="system", role=None, ministry_id=None)
