"""Which tenant a call acts as: the caller's, on a multi-tenant collection.

Services hand the tenant to storage explicitly; storage sets it at the start of the call's
transaction and PostgreSQL's row-level security keeps the call to that tenant's rows."""

from __future__ import annotations

from pgvector_grpc_server.domain.errors import FailedPrecondition
from pgvector_grpc_server.domain.models import CollectionSpec
from pgvector_grpc_server.domain.principal import current_principal


def caller_tenant() -> str | None:
    """The authenticated caller's tenant; None without authentication (or with an empty tenant)."""
    principal = current_principal()
    return principal.tenant if principal is not None and principal.tenant else None


def tenant_for(spec: CollectionSpec) -> str | None:
    """The tenant a call on ``spec`` acts as: None for a single-tenant collection, the caller's for
    a multi-tenant one.

    A multi-tenant collection without a caller's tenant (authentication off) is refused with
    FAILED_PRECONDITION rather than answered from an empty view: the database would show such a
    call no rows and refuse its writes anyway, but an empty answer would look like data loss."""
    if not spec.multi_tenant:
        return None
    tenant = caller_tenant()
    if tenant is None:
        raise FailedPrecondition(
            f"collection {spec.name!r} is multi-tenant: calls on it must authenticate as a tenant "
            "(an API key or a JWT; authentication is off on this server)",
            "TENANT_REQUIRED",
            {"collection": spec.name},
        )
    return tenant
