"""Domain errors. Transport maps each class to one gRPC status code (transport/status.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DomainError(Exception):
    """Base of every error the service reports to callers."""

    message: str
    reason: str = "ERROR"
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@dataclass
class FieldViolation:
    """One bad field of a request, named by its path, e.g. ``documents[3].embedding``."""

    field: str
    description: str


@dataclass
class InvalidArgument(DomainError):
    """Bad input; ``violations`` names the fields at fault."""

    violations: list[FieldViolation] = field(default_factory=list)

    @classmethod
    def of(cls, field_path: str, description: str, reason: str, **metadata: str) -> InvalidArgument:
        """An error about one field, whose message names the field."""
        return cls(f"{field_path}: {description}", reason, dict(metadata), [FieldViolation(field_path, description)])

    def under(self, prefix: str) -> InvalidArgument:
        """The same error with every field path prefixed, e.g. by ``batches[3].``."""
        violations = [FieldViolation(prefix + v.field, v.description) for v in self.violations]
        message = f"{prefix}{self.message}" if violations else self.message
        return InvalidArgument(message, self.reason, self.metadata, violations)


class NotFound(DomainError):
    """The named collection (or other resource) does not exist."""


class AlreadyExists(DomainError):
    """The resource to create exists already."""


class FailedPrecondition(DomainError):
    """The request conflicts with the current state (e.g. a collection of another dimension)."""


class Aborted(DomainError):
    """A concurrent operation conflicts with this one (e.g. the same migration is running)."""


class Overloaded(DomainError):
    """Too many requests are waiting for the database; retry later."""


class LimitExceeded(DomainError):
    """A configured limit or the server's free disk space would be exceeded."""


class Unavailable(DomainError):
    """The database cannot be reached; retryable."""


class DeadlineExceeded(DomainError):
    """A statement ran past its time limit."""


class PermissionDenied(DomainError):
    """The caller may not do this."""


class Unauthenticated(DomainError):
    """The call carries no credential, or one that is malformed, unknown, revoked or expired."""
