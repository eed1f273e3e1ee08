"""Authentication of every call and its authorisation by RPC, wrapped around each method's handler.

Each RPC needs a role (reader < writer < admin) and, when it names a collection, a principal
granted that collection. Health is always open; reflection is open only when configured.

Two wrappers, with request decoding between them (see wrapping.py): ``authenticated`` checks the
credential and the role before a byte of the request is parsed, so a refused caller learns nothing
about its bytes, and binds the principal to the call; ``granted`` then checks each decoded request
against the principal's grant."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from pgvector_grpc.v1 import collection_service_pb2, document_service_pb2, migration_service_pb2

from pgvector_grpc_server.domain.errors import DomainError, PermissionDenied
from pgvector_grpc_server.domain.principal import Principal, Role, bind_principal, current_principal
from pgvector_grpc_server.services.authentication import Authenticator
from pgvector_grpc_server.transport.status import Context, abort, as_domain_error, rich_status
from pgvector_grpc_server.transport.wrapping import Handler, behaviour_of, preceded, same_shape

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessRule:
    """What a call of one RPC needs: a role, and a grant of the collection its request names."""

    role: Role
    collection_of: Callable[[Any], str] | None = None
    # Removes from the response what the principal was not granted (ListCollections).
    only_granted: Callable[[Any, Principal], None] | None = None


def _only_granted_collections(response: Any, principal: Principal) -> None:
    granted = [c for c in response.collections if principal.may_use(c.name)]
    del response.collections[:]
    response.collections.extend(granted)


def _methods(descriptor: Any, service: str, rules: dict[str, AccessRule]) -> dict[str, AccessRule]:
    full_name = descriptor.services_by_name[service].full_name
    return {f"/{full_name}/{method}": rule for method, rule in rules.items()}


def _by_collection_field(request: Any) -> str:
    return str(request.collection)


def _by_name_field(request: Any) -> str:
    return str(request.name)


R, W, A = Role.READER, Role.WRITER, Role.ADMIN
RULES: dict[str, AccessRule] = {
    **_methods(
        collection_service_pb2.DESCRIPTOR,
        "CollectionService",
        {
            "CreateCollection": AccessRule(A, lambda request: str(request.collection.name)),
            "GetCollection": AccessRule(R, _by_name_field),
            "ListCollections": AccessRule(R, only_granted=_only_granted_collections),
            "DeleteCollection": AccessRule(A, _by_name_field),
            "BuildIndex": AccessRule(A, _by_name_field),
        },
    ),
    **_methods(
        document_service_pb2.DESCRIPTOR,
        "DocumentService",
        {
            "Ingest": AccessRule(W, _by_collection_field),
            "Search": AccessRule(R, _by_collection_field),
            "SearchStream": AccessRule(R, lambda request: str(request.query.collection)),
            "GetDocuments": AccessRule(R, _by_collection_field),
            "DeleteDocuments": AccessRule(W, _by_collection_field),
            "CountDocuments": AccessRule(R, _by_collection_field),
            "GetCheckpoint": AccessRule(R, _by_collection_field),
            "ListDocuments": AccessRule(R, _by_collection_field),
            "UpdateMetadata": AccessRule(W, _by_collection_field),
            "DescribeMetadata": AccessRule(R, _by_collection_field),
            "GetFieldValues": AccessRule(R, _by_collection_field),
            "GetFieldRange": AccessRule(R, _by_collection_field),
        },
    ),
    **_methods(
        migration_service_pb2.DESCRIPTOR,
        "MigrationService",
        # An empty target means the source collection's name.
        {"Migrate": AccessRule(A, lambda request: str(request.target or request.chroma.collection))},
    ),
}
# Any method without a rule (reflection when it requires auth, a future RPC) needs a principal;
# only an admin may call a method nobody wrote a rule for.
REFLECTION_PREFIX = "/grpc.reflection."
REFLECTION_RULE = AccessRule(R)
UNLISTED_RULE = AccessRule(A)
HEALTH_PREFIX = f"/{health_pb2.DESCRIPTOR.services_by_name['Health'].full_name}/"


def bearer_credential(metadata: Any) -> str | None:
    """The credential of an ``authorization: Bearer …`` header; "" for any other authorization."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, credential = text.strip().partition(" ")
            return credential.strip() if scheme.lower() == "bearer" else ""
    return None


def _refusal(principal: Principal, rule: AccessRule, request: Any) -> DomainError | None:
    """Why ``principal`` may not send ``request``, or None."""
    if rule.collection_of is None:
        return None
    collection = rule.collection_of(request)
    if collection and not principal.may_use(collection):
        return PermissionDenied(
            f"not granted the collection {collection!r}", "COLLECTION_NOT_GRANTED", {"collection": collection}
        )
    return None


class Access:
    """Authenticates each call's bearer credential and applies its RPC's AccessRule."""

    def __init__(self, authenticator: Authenticator, *, reflection_requires_auth: bool = True) -> None:
        self._authenticator = authenticator
        self._open_prefixes = (HEALTH_PREFIX,) if reflection_requires_auth else (HEALTH_PREFIX, REFLECTION_PREFIX)

    def _rule(self, method: str) -> AccessRule | None:
        """The rule of ``method``; None for an open one."""
        if method.startswith(self._open_prefixes):
            return None
        return RULES.get(method) or (REFLECTION_RULE if method.startswith(REFLECTION_PREFIX) else UNLISTED_RULE)

    def authenticated(self, method: str, handler: Handler) -> Handler:
        """``handler`` run only for a caller who may call ``method``, with the caller bound to the call."""
        rule = self._rule(method)
        if rule is None:
            return handler

        async def admitted(request: Any, context: Context) -> Any:
            bind_principal(await self._admit(method, rule, context))
            return request

        return same_shape(handler, preceded(behaviour_of(handler), admitted))

    async def _admit(self, method: str, rule: AccessRule, context: Context) -> Principal | None:
        """The caller, if ``rule`` admits it (None when the server requires no authentication); else
        the call ends with the refusal."""
        try:
            if not await self._authenticator.required():
                return None
            principal = await self._authenticator.authenticate(bearer_credential(context.invocation_metadata()))
            if not principal.may(rule.role):
                raise PermissionDenied(
                    f"{method.rsplit('/', 1)[-1]} needs the {rule.role.label} role",
                    "ROLE_NOT_ALLOWED",
                    {"required_role": rule.role.label, "role": principal.role.label},
                )
        except Exception as exc:
            error = as_domain_error(exc)
            log.info("refused %s: %s (%s)", method, error.reason, error.message)
            status = rich_status(error)
            await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
            raise AssertionError("unreachable: abort raises") from exc
        return principal

    def granted(self, method: str, handler: Handler) -> Handler:
        """``handler`` with each request checked against the grant of the call's principal (and a
        ListCollections answer cut to it)."""
        rule = self._rule(method)
        if rule is None or (rule.collection_of is None and rule.only_granted is None):
            return handler
        inner = behaviour_of(handler)
        if handler.unary_unary is not None:
            return same_shape(handler, _unary_unary(inner, rule))
        if handler.unary_stream is not None:
            return same_shape(handler, _unary_stream(inner, rule))
        if handler.stream_stream is not None:
            return same_shape(handler, _stream_stream(inner, rule))
        return same_shape(handler, _stream_unary(inner, rule))


def _unary_unary(inner: Callable[..., Any], rule: AccessRule) -> Callable[..., Any]:
    async def behaviour(request: Any, context: Context) -> Any:
        principal = current_principal()
        if principal is None:
            return await inner(request, context)
        refusal = _refusal(principal, rule, request)
        if refusal is not None:
            await abort(context, refusal)
        response = await inner(request, context)
        if rule.only_granted is not None and principal.collections is not None:
            rule.only_granted(response, principal)
        return response

    return behaviour


def _unary_stream(inner: Callable[..., Any], rule: AccessRule) -> Callable[..., Any]:
    async def checked(request: Any, context: Context) -> Any:
        principal = current_principal()
        refusal = None if principal is None else _refusal(principal, rule, request)
        if refusal is not None:
            await abort(context, refusal)
        return request

    return preceded(inner, checked)


class _GrantedRequests:
    """The request stream, stopped at the first request outside the grant.

    The servicer may read requests in another task (SearchStream does) and may not end when its
    reader fails, so a refusal also cancels the handler's task; the handler wrapper then ends the
    call with the refusal's status."""

    def __init__(self, requests: AsyncIterator[Any], principal: Principal, rule: AccessRule) -> None:
        self._requests = requests
        self._principal = principal
        self._rule = rule
        self._handler_task = asyncio.current_task()
        self._cancelled_handler = False
        self.refusal: DomainError | None = None

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for request in self._requests:
            self.refusal = _refusal(self._principal, self._rule, request)
            if self.refusal is not None:
                if self._handler_task is not None and self._handler_task is not asyncio.current_task():
                    self._cancelled_handler = True
                    self._handler_task.cancel()
                raise self.refusal
            yield request

    def take_over(self, exc: BaseException) -> bool:
        """Whether ``exc`` came from this stream's refusal (the wrapper then reports it)."""
        if self.refusal is None or isinstance(exc, grpc.aio.AbortError):
            return False
        if self._cancelled_handler and self._handler_task is not None:
            self._handler_task.uncancel()
        return True


def _stream_stream(inner: Callable[..., Any], rule: AccessRule) -> Callable[..., Any]:
    async def behaviour(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        principal = current_principal()
        if principal is None:
            async for response in inner(requests, context):
                yield response
            return
        granted = _GrantedRequests(requests, principal, rule)
        try:
            async for response in inner(granted.__aiter__(), context):
                yield response
        except (Exception, asyncio.CancelledError) as exc:
            if not granted.take_over(exc):
                raise
        if granted.refusal is not None:
            await abort(context, granted.refusal)

    return behaviour


def _stream_unary(inner: Callable[..., Any], rule: AccessRule) -> Callable[..., Any]:
    async def behaviour(requests: AsyncIterator[Any], context: Context) -> Any:
        principal = current_principal()
        if principal is None:
            return await inner(requests, context)
        granted = _GrantedRequests(requests, principal, rule)
        try:
            return await inner(granted.__aiter__(), context)
        except (Exception, asyncio.CancelledError) as exc:
            if not granted.take_over(exc):
                raise
        assert granted.refusal is not None
        await abort(context, granted.refusal)

    return behaviour
