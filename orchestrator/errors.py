"""Domain errors. The API maps each to an HTTP problem; workers log them."""

from typing import Any


class DomainError(Exception):
    """Base of every error the business rules raise on purpose."""

    title = "Domain error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    title = "Not found"


class PermissionDenied(DomainError):
    title = "Permission denied"


class InvalidInput(DomainError):
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, field=field)
        self.errors = errors or ([{"field": field, "message": detail}] if field else [])


class IllegalTransition(DomainError):
    title = "Illegal state transition"

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(
            f"{entity} is '{current}' and cannot become '{target}'",
            current_state=current,
            target_state=target,
        )
        self.entity = entity
        self.current = current
        self.target = target


class QuotaExceeded(DomainError):
    title = "Quota exceeded"


class Conflict(DomainError):
    title = "Conflict"


class Unavailable(DomainError):
    """Something the request needs outside Tonle (the DCIM) did not answer, or refused: worth a
    retry later, and nothing was changed on Tonle's side."""

    title = "Service unavailable"


class NotImplementedYet(DomainError):
    title = "Not implemented"
