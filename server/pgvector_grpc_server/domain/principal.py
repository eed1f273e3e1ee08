"""Who is calling: the principal an API key or a JWT authenticates, and the call it is bound to."""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass


class Role(enum.IntEnum):
    """What a principal may do; each role may do everything the roles below it may."""

    READER = 1
    WRITER = 2
    ADMIN = 3

    @classmethod
    def named(cls, name: str) -> Role:
        """The role called ``name`` (reader / writer / admin); ValueError otherwise."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}; expected reader, writer or admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``collections`` None means every collection."""

    tenant: str
    role: Role
    collections: frozenset[str] | None = None
    # The API key id or the JWT subject: safe to log, unlike the credential itself.
    subject: str = ""

    def may(self, required: Role) -> bool:
        return self.role >= required

    def may_use(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


# The principal of the call being handled; None when the server runs without authentication.
_current: ContextVar[Principal | None] = ContextVar("pgvector_grpc_principal", default=None)


def current_principal() -> Principal | None:
    """The authenticated caller of the current call (None when authentication is off)."""
    return _current.get()


def bind_principal(principal: Principal | None) -> None:
    """Make ``principal`` the caller of the current call (its task and what it awaits)."""
    _current.set(principal)
