"""Input rules. Each check raises InvalidArgument naming the field at fault."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from pgvector_grpc_common.metadata_json import nesting_exceeds
from pgvector_grpc_common.vocabulary import (
    MAX_RERANK_FACTOR,
    VECTOR_STORAGES,
    DocumentRecord,
    HnswIndex,
    Index,
    IvfflatIndex,
    Metric,
    Vector,
    VectorStorage,
)

from pgvector_grpc_server.domain.errors import FieldViolation, InvalidArgument
from pgvector_grpc_server.domain.models import (
    AllOf,
    AnyOf,
    CollectionSpec,
    Condition,
    Filter,
    Fusion,
    IngestBatch,
    IngestTarget,
    Not,
    Scalar,
    SearchMode,
    SearchQuery,
    Selection,
    Timestamp,
)

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# Collections are tables of the pgvector_grpc schema: a name must not be one of the schema's own
# objects (a test in tests/server/test_limits.py keeps this list in step with sql/), nor shaped
# like the names of the indexes a collection gets (sql/020_collections.sql, index_name), nor
# like the primary key index and identity sequence PostgreSQL names after another collection.
RESERVED_COLLECTION_NAMES = frozenset(
    {
        "api_keys",
        "api_keys_key_hash_key",
        "api_keys_pkey",
        "checkpoints",
        "checkpoints_pkey",
        "collections",
        "collections_pkey",
        "create_collection",
        "create_vector_index",
        "current_tenant",
        "default_rerank_factor",
        "distance_operator",
        "document_object",
        "drop_collection",
        "exact_scan_limit",
        "hybrid_search",
        "index_name",
        "insert_from_staging",
        "reserve_insertion_order",
        "search_documents",
        "text_search_config",
        "vector_index_key",
        "vector_schema",
    }
)
INDEX_SHAPED_NAME = re.compile(r"pgvg_[0-9a-f]{32}_.*")
IMPLICITLY_NAMED_SUFFIXES = ("_pkey", "_seq_seq")
MAX_ID_LENGTH = 512
MAX_DIMENSION = 16000
# The most dimensions pgvector's HNSW and IVFFlat index of each storage (bit: 64,000, more than the
# vector(n) column holds).
MAX_INDEXED_DIMENSIONS: dict[VectorStorage, int] = {"vector": 2000, "halfvec": 4000, "bit": min(64000, MAX_DIMENSION)}
# The largest magnitude a half-precision float holds: a halfvec index cannot take a larger value.
MAX_HALFVEC_VALUE = 65504.0
MAX_FILTER_DEPTH = 32
MAX_FILTER_TERMS = 1024
MAX_METADATA_DEPTH = 32
MAX_METADATA_BYTES = 64 * 1024
MAX_QUERY_TEXT_LENGTH = 10_000
MAX_RRF_K = 10_000
MAX_PROBES = 32768  # pgvector's largest ivfflat.probes
MAX_CANDIDATES = 10_000
# A text-search configuration: a name of pg_ts_config, qualified by its schema unless pg_catalog's.
TEXT_SEARCH_CONFIG = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Numbers that may not fit a float64 (long digit runs, 3-digit exponents): only text holding one
# is parsed in full to find out, since the match may be inside a string.
_LARGE_NUMBER_HINT = re.compile(r"\d{309}|[eE][+-]?\d{3}")


def check_collection_name(name: str, field: str = "name") -> str:
    """The name, if it is 1-63 characters of [A-Za-z0-9_.-] starting with a letter or digit, and
    neither one of the schema's own names nor shaped like a collection's index names."""
    if not COLLECTION_NAME.fullmatch(name):
        raise InvalidArgument.of(
            field,
            f"collection name {name!r} must be 1-63 characters of [A-Za-z0-9_.-], starting with a letter or digit",
            "BAD_COLLECTION_NAME",
        )
    if name in RESERVED_COLLECTION_NAMES or INDEX_SHAPED_NAME.fullmatch(name):
        raise InvalidArgument.of(
            field, f"collection name {name!r} is reserved for the server's own tables and indexes", "RESERVED_NAME"
        )
    return name


def check_new_collection_name(name: str, field: str = "name") -> str:
    """A name for a new collection: :func:`check_collection_name`, and not ending like the names
    PostgreSQL gives another collection's primary key or sequence (creating it could collide).
    Collections named so before this rule stay reachable."""
    check_collection_name(name, field)
    if name.endswith(IMPLICITLY_NAMED_SUFFIXES):
        raise InvalidArgument.of(
            field,
            f"collection name {name!r} must not end with {' or '.join(IMPLICITLY_NAMED_SUFFIXES)} "
            "(PostgreSQL names other collections' keys and sequences so)",
            "RESERVED_NAME",
        )
    return name


def check_spec(spec: CollectionSpec, field: str = "collection") -> CollectionSpec:
    """A collection definition that PostgreSQL and pgvector can hold and index."""
    check_new_collection_name(spec.name, f"{field}.name")
    index = spec.index
    _check_storage(index, spec.metric, f"{field}.index")
    limit = MAX_DIMENSION if index.type == "none" else MAX_INDEXED_DIMENSIONS[index.storage]
    if not 1 <= spec.dimension <= limit:
        index_note = ""
        if index.type != "none":
            index_note = f" with a {index.type} index" + ("" if index.storage == "vector" else f" of {index.storage}")
        raise InvalidArgument.of(
            f"{field}.dimension", f"must be between 1 and {limit}{index_note}, got {spec.dimension}", "BAD_DIMENSION"
        )
    for name, value, low, high in _index_parameters(index):
        if not low <= value <= high:
            raise InvalidArgument.of(f"{field}.{name}", f"must be between {low} and {high}, got {value}", "BAD_INDEX")
    if spec.text_search is not None:
        check_text_search_name(spec.text_search, f"{field}.text_search")
    return spec


def check_text_search_name(name: str, field: str) -> None:
    """The shape of a text-search configuration's name (whether it exists, the database says)."""
    if not TEXT_SEARCH_CONFIG.fullmatch(name):
        raise InvalidArgument.of(
            field,
            f"{name!r} is not the name of a text-search configuration (e.g. simple, english, myschema.myconfig)",
            "BAD_TEXT_SEARCH",
        )


def unknown_text_search(name: str, field: str = "collection.text_search") -> InvalidArgument:
    """The error for a text-search configuration the database does not have."""
    return InvalidArgument.of(
        field, f"text-search configuration {name!r} does not exist (see pg_ts_config)", "BAD_TEXT_SEARCH"
    )


def _check_storage(index: Index, metric: Metric, field: str) -> None:
    """What the index stores: a known storage; bit (sign bits, Hamming distance) for the cosine metric
    only, as the sign bits keep a vector's direction and lose its length, which L2 distance and the
    inner product depend on; a rerank factor only where the index's distances are approximate."""
    if index.storage not in VECTOR_STORAGES:
        raise InvalidArgument.of(f"{field}.storage", f"unknown storage {index.storage!r}", "BAD_INDEX")
    if index.storage == "bit" and metric != "cosine":
        raise InvalidArgument.of(
            f"{field}.storage",
            f"bit storage needs the cosine metric, not {metric}: sign bits keep a vector's direction, not its length",
            "BAD_INDEX",
        )
    if index.storage == "vector" and index.rerank_factor != 1:
        raise InvalidArgument.of(
            f"{field}.rerank_factor",
            "applies to halfvec and bit storage only (a full-precision index's distances are exact)",
            "BAD_INDEX",
        )
    check_rerank_factor(index.rerank_factor, f"{field}.rerank_factor")


def check_rerank_factor(factor: int, field: str = "rerank_factor") -> None:
    """1 <= candidates re-ranked per result <= MAX_RERANK_FACTOR."""
    if not 1 <= factor <= MAX_RERANK_FACTOR:
        raise InvalidArgument.of(field, f"must be between 1 and {MAX_RERANK_FACTOR}, got {factor}", "BAD_RERANK_FACTOR")


def _index_parameters(index: Index) -> tuple[tuple[str, int, int, int], ...]:
    """Each parameter of an index as (field, value, lowest, highest)."""
    if isinstance(index, HnswIndex):
        return ("index.hnsw.m", index.m, 2, 100), ("index.hnsw.ef_construction", index.ef_construction, 4, 1000)
    if isinstance(index, IvfflatIndex):
        return (("index.ivfflat.lists", index.lists, 1, 32768),)
    return ()


def check_id(doc_id: str, field: str) -> None:
    """A document id: 1-512 characters, no NUL."""
    if not doc_id:
        raise InvalidArgument.of(field, "must not be empty", "BAD_ID")
    if len(doc_id) > MAX_ID_LENGTH:
        raise InvalidArgument.of(field, f"must be at most {MAX_ID_LENGTH} characters, got {len(doc_id)}", "BAD_ID")
    if "\x00" in doc_id:
        raise InvalidArgument.of(field, "must not contain NUL characters", "BAD_ID")


def check_ids(ids: Sequence[str], max_ids: int, field: str = "ids") -> None:
    """At most ``max_ids`` ids, each one well-formed."""
    if len(ids) > max_ids:
        raise InvalidArgument.of(field, f"at most {max_ids} ids per request, got {len(ids)}", "TOO_MANY_IDS")
    for i, doc_id in enumerate(ids):
        check_id(doc_id, f"{field}[{i}]")


def check_selection(selection: Selection, max_ids: int, *, explicit: bool = False) -> Selection:
    """Ids and filter of a selection. With ``explicit`` (a change to documents), the selection
    must name its documents: by ids, by a filter, or as all_documents."""
    if explicit and selection.ids is None and selection.filter is None and not selection.all_documents:
        raise InvalidArgument.of("ids", "give ids, a filter, or all_documents=true", "NOTHING_SELECTED")
    if selection.ids is not None:
        check_ids(selection.ids, max_ids)
    if selection.filter is not None:
        check_filter(selection.filter)
    return selection


def page_size_of(page_size: int, field: str = "page_size") -> int:
    """The number of items a page holds: 0 asks for the default, more than the maximum gets the maximum."""
    if page_size < 0:
        raise InvalidArgument.of(field, f"must not be negative, got {page_size}", "BAD_PAGE_SIZE")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def check_offset(offset: int, field: str = "offset") -> None:
    """A position to start from: not negative."""
    if offset < 0:
        raise InvalidArgument.of(field, f"must not be negative, got {offset}", "BAD_OFFSET")


def check_path(path: Sequence[str], field: str = "path") -> None:
    """The path of a metadata field: at least one key, none empty, no deeper than metadata nests."""
    if not path or any(not key for key in path):
        raise InvalidArgument.of(field, "must name a metadata field (non-empty keys)", "BAD_PATH")
    if any("\x00" in key for key in path):
        raise InvalidArgument.of(field, "must not contain NUL characters", "BAD_PATH")
    _check_path_depth(path, field, "BAD_PATH")


def _check_path_depth(path: Sequence[str], field: str, reason: str) -> None:
    if len(path) > MAX_METADATA_DEPTH:
        raise InvalidArgument.of(
            field, f"has {len(path)} keys; metadata nests at most {MAX_METADATA_DEPTH} levels", reason
        )


def check_checkpoint_key(key: str, field: str = "key") -> None:
    """A checkpoint is saved and read under a non-empty key."""
    if not key:
        raise InvalidArgument.of(field, "must not be empty", "MISSING")
    if "\x00" in key:
        raise InvalidArgument.of(field, "must not contain NUL characters", "BAD_CHECKPOINT")


def check_ingest_batch(batch: IngestBatch, target: IngestTarget | None, max_documents: int) -> IngestTarget:
    """One batch of an Ingest stream (field paths relative to the batch) and the stream's target.

    The first batch names the collection and the conflict policy (default upsert); later
    batches may repeat them but not change them."""
    if target is None:
        if not batch.collection:
            raise InvalidArgument.of("collection", "must name the target collection", "MISSING")
        target = IngestTarget(batch.collection, batch.policy or "upsert")
    elif batch.collection and batch.collection != target.collection:
        raise InvalidArgument.of("collection", "must not change within a stream", "BAD_STREAM")
    elif batch.policy and batch.policy != target.policy:
        raise InvalidArgument.of("on_conflict", "must not change within a stream", "BAD_STREAM")
    if len(batch.documents) > max_documents:
        raise InvalidArgument.of(
            "documents",
            f"a batch holds at most {max_documents} documents, got {len(batch.documents)}",
            "BATCH_TOO_LARGE",
        )
    if batch.checkpoint is not None:
        check_checkpoint_key(batch.checkpoint.key, "checkpoint.key")
        if "\x00" in batch.checkpoint.value:
            raise InvalidArgument.of("checkpoint.value", "must not contain NUL characters", "BAD_CHECKPOINT")
    return target


def check_vector(vector: Vector, dimension: int, metric: Metric, field: str, storage: VectorStorage = "vector") -> None:
    """An embedding of the collection's dimension, finite, not all zero in a cosine collection, and
    within half precision's range where the index stores halfvec values."""
    if vector.shape != (dimension,):
        raise InvalidArgument.of(
            field,
            f"expected {dimension} dimensions, got {vector.size}",
            "DIMENSION_MISMATCH",
            expected=str(dimension),
            actual=str(vector.size),
        )
    if not np.isfinite(vector).all():
        raise InvalidArgument.of(field, "must not contain NaN or infinite values", "NON_FINITE_VALUE")
    if metric == "cosine" and not vector.any():
        raise InvalidArgument.of(
            field, "must not be all zeros in a cosine collection (its cosine distance is undefined)", "ZERO_VECTOR"
        )
    if storage == "halfvec" and np.abs(vector).max() > MAX_HALFVEC_VALUE:
        raise InvalidArgument.of(
            field,
            f"holds {float(np.abs(vector).max()):g}: values of a collection indexed as halfvec must lie within "
            f"+-{MAX_HALFVEC_VALUE:g}",
            "VALUE_OUT_OF_RANGE",
        )


def check_metadata_size(text: str, field: str) -> None:
    """Metadata JSON of at most MAX_METADATA_BYTES (UTF-8) nested at most MAX_METADATA_DEPTH levels.

    Cheap enough for every document of an Ingest batch: the text is scanned for its depth only
    when it holds more brackets than the limit."""
    if len(text) * 4 > MAX_METADATA_BYTES and (size := len(text.encode())) > MAX_METADATA_BYTES:
        raise InvalidArgument.of(
            field, f"is {size} bytes of JSON; metadata holds at most {MAX_METADATA_BYTES}", "METADATA_TOO_LARGE"
        )
    if nesting_exceeds(text, MAX_METADATA_DEPTH):
        raise InvalidArgument.of(
            field,
            f"is nested deeper than {MAX_METADATA_DEPTH} levels (the object itself is level 1)",
            "METADATA_TOO_DEEP",
        )
    if _LARGE_NUMBER_HINT.search(text):
        _check_number_range(text, field)


def _check_number_range(text: str, field: str) -> None:
    """Every number fits a float64 (|x| < 1.8e308, and not so small it would read back as 0):
    PostgreSQL's jsonb would keep a number like 1e131071 as 131,079 digits, which no reader takes."""
    try:
        json.loads(text, parse_int=_finite_int, parse_float=_finite_float, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidArgument.of(field, f"must be valid JSON within a float64's range: {exc}", "BAD_METADATA") from None


def _finite_int(token: str) -> int:
    if len(token.lstrip("-")) > 308:
        raise ValueError(f"the integer of {len(token)} digits is beyond a float64's range")
    return int(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise ValueError(f"{token[:20]}… is beyond a float64's range")
    if value == 0.0 and any(c in "123456789" for c in token.partition("e")[0].partition("E")[0]):
        raise ValueError(f"{token[:20]}… is too small for a float64 (it would read back as 0)")
    return value


def check_metadata_json(text: str, field: str) -> None:
    """The JSON text of an object that PostgreSQL's jsonb accepts, within the metadata limits."""
    check_metadata_size(text, field)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidArgument.of(field, f"must be valid JSON: {exc}", "BAD_METADATA") from None
    if not isinstance(value, dict):
        raise InvalidArgument.of(field, f"must be a JSON object, got {type(value).__name__}", "BAD_METADATA")
    if "\\u0000" in text:
        raise InvalidArgument.of(field, "must not contain NUL characters", "BAD_METADATA")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def check_document(
    doc: DocumentRecord,
    dimension: int,
    metric: Metric,
    field: str,
    *,
    full_metadata: bool,
    storage: VectorStorage = "vector",
) -> None:
    """One document of an Ingest batch. Metadata is fully parsed only when ``full_metadata`` is set;
    otherwise only its shape is checked and PostgreSQL parses it (the batch is re-checked in full on failure)."""
    check_id(doc.id, f"{field}.id")
    if doc.content is not None and "\x00" in doc.content:
        raise InvalidArgument.of(f"{field}.content", "must not contain NUL characters", "BAD_CONTENT")
    if full_metadata:
        check_metadata_json(doc.metadata_json, f"{field}.metadata_json")
    else:
        check_metadata_size(doc.metadata_json, f"{field}.metadata_json")
        if not doc.metadata_json.lstrip().startswith("{"):
            raise InvalidArgument.of(f"{field}.metadata_json", "must be a JSON object", "BAD_METADATA")
    if doc.embedding is not None and doc.embedding.shape != (dimension,):
        check_vector(doc.embedding, dimension, metric, f"{field}.embedding", storage)


def check_documents(
    docs: Sequence[DocumentRecord],
    dimension: int,
    metric: Metric,
    field: str = "documents",
    *,
    full_metadata: bool,
    storage: VectorStorage = "vector",
) -> None:
    """Every document of a batch; the embeddings' values are checked as one matrix."""
    for i, doc in enumerate(docs):
        check_document(doc, dimension, metric, f"{field}[{i}]", full_metadata=full_metadata, storage=storage)
    positions = [i for i, doc in enumerate(docs) if doc.embedding is not None]
    if not positions:
        return
    matrix = np.stack([docs[i].embedding for i in positions])  # type: ignore[misc]
    bad = ~np.isfinite(matrix).all(axis=1)
    if metric == "cosine":
        bad |= ~matrix.any(axis=1)
    if storage == "halfvec":
        bad |= (np.abs(matrix) > MAX_HALFVEC_VALUE).any(axis=1)
    for row in np.flatnonzero(bad)[:1]:
        i = positions[int(row)]
        check_vector(matrix[row], dimension, metric, f"{field}[{i}].embedding", storage)


def check_top_k(top_k: int, max_top_k: int, field: str = "top_k") -> None:
    """1 <= top_k <= the server's limit."""
    if not 1 <= top_k <= max_top_k:
        raise InvalidArgument.of(field, f"must be between 1 and {max_top_k}, got {top_k}", "BAD_TOP_K")


def search_mode(query: SearchQuery) -> SearchMode:
    """The mode a query asks for: as given, else hybrid with both an embedding and a query text,
    keyword with a query text alone, vector otherwise."""
    if query.mode is not None:
        return query.mode
    if query.query_text is None:
        return "vector"
    return "keyword" if query.embedding is None else "hybrid"


def check_query(
    query: SearchQuery, dimension: int, metric: Metric, max_top_k: int, storage: VectorStorage = "vector"
) -> SearchMode:
    """A search query against a collection of the given dimension, metric and index storage; its mode."""
    check_top_k(query.top_k, max_top_k)
    mode = search_mode(query)
    if query.rerank_factor is not None:
        check_rerank_factor(query.rerank_factor)
    if query.embedding is not None:
        check_vector(query.embedding, dimension, metric, "embedding", storage)
    elif mode != "keyword":
        raise InvalidArgument.of(
            "embedding", f"set the query embedding (a {mode} search needs one)", "MISSING_EMBEDDING"
        )
    if query.query_text is not None:
        _check_query_text(query.query_text)
        if mode == "vector":
            raise InvalidArgument.of(
                "query_text", "must be empty in a vector search (the hybrid and keyword modes take it)", "BAD_MODE"
            )
    elif mode != "vector":
        raise InvalidArgument.of("query_text", f"set the query text (a {mode} search needs one)", "MISSING_QUERY_TEXT")
    if mode == "hybrid":
        _check_fusion(query.fusion, query.top_k)
    if query.min_similarity is not None and not math.isfinite(query.min_similarity):
        raise InvalidArgument.of("min_similarity", "must be a finite number", "NON_FINITE_VALUE")
    if query.min_similarity is not None and mode == "keyword":
        raise InvalidArgument.of(
            "min_similarity", "applies to the vector ranking, which a keyword search does not use", "BAD_MODE"
        )
    if query.ef_search is not None and not 1 <= query.ef_search <= 1000:
        raise InvalidArgument.of("ef_search", f"must be between 1 and 1000, got {query.ef_search}", "BAD_EF")
    if query.probes is not None and not 1 <= query.probes <= MAX_PROBES:
        raise InvalidArgument.of("probes", f"must be between 1 and {MAX_PROBES}, got {query.probes}", "BAD_PROBES")
    if query.filter is not None:
        check_filter(query.filter)
    return mode


def _check_query_text(text: str) -> None:
    if len(text) > MAX_QUERY_TEXT_LENGTH:
        raise InvalidArgument.of(
            "query_text", f"must be at most {MAX_QUERY_TEXT_LENGTH} characters, got {len(text)}", "BAD_QUERY_TEXT"
        )
    if "\x00" in text:
        raise InvalidArgument.of("query_text", "must not contain NUL characters", "BAD_QUERY_TEXT")


def _check_fusion(fusion: Fusion, top_k: int, field: str = "hybrid") -> None:
    """Reciprocal rank fusion's k, weights (finite, not negative, not both 0) and candidates."""
    if not 0 <= fusion.rrf_k <= MAX_RRF_K:
        raise InvalidArgument.of(
            f"{field}.rrf_k", f"must be between 0 and {MAX_RRF_K}, got {fusion.rrf_k}", "BAD_FUSION"
        )
    for name, weight in (("vector_weight", fusion.vector_weight), ("keyword_weight", fusion.keyword_weight)):
        if not (math.isfinite(weight) and weight >= 0):
            raise InvalidArgument.of(f"{field}.{name}", f"must be a finite number >= 0, got {weight}", "BAD_FUSION")
    if fusion.vector_weight == 0 and fusion.keyword_weight == 0:
        raise InvalidArgument.of(f"{field}.vector_weight", "and keyword_weight must not both be 0", "BAD_FUSION")
    if fusion.candidates is not None and not top_k <= fusion.candidates <= MAX_CANDIDATES:
        raise InvalidArgument.of(
            f"{field}.candidates",
            f"must be between top_k ({top_k}) and {MAX_CANDIDATES}, got {fusion.candidates}",
            "BAD_FUSION",
        )


def check_filter(node: Filter, field: str = "filter") -> None:
    """A filter tree: bounded depth and number of terms, values that fit their operators."""
    terms = filter_terms(node)
    if terms > MAX_FILTER_TERMS:
        raise InvalidArgument.of(
            field,
            f"has {terms} terms; a filter holds at most {MAX_FILTER_TERMS} (a condition is one term, "
            "an in / nin list one per value)",
            "FILTER_TOO_LARGE",
        )
    _check_filter_node(node, field, 0)


def filter_terms(node: Filter) -> int:
    """The terms of a filter: one per condition, one per value of an in / nin list."""
    terms, pending = 0, [node]
    while pending:
        current = pending.pop()
        if isinstance(current, AllOf | AnyOf):
            pending.extend(current.operands)
        elif isinstance(current, Not):
            pending.append(current.operand)
        else:
            terms += max(1, len(current.value)) if isinstance(current.value, tuple) else 1
    return terms


def _check_filter_node(node: Filter, field: str, depth: int) -> None:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidArgument.of(
            field, f"is nested deeper than {MAX_FILTER_DEPTH} levels of all_of / any_of / not", "FILTER_TOO_DEEP"
        )
    if isinstance(node, AllOf | AnyOf):
        name = "all_of" if isinstance(node, AllOf) else "any_of"
        for i, operand in enumerate(node.operands):
            _check_filter_node(operand, f"{field}.{name}.filters[{i}]", depth + 1)
    elif isinstance(node, Not):
        _check_filter_node(node.operand, f"{field}.not", depth + 1)
    else:
        _check_condition(node, f"{field}.condition")


def parse_timestamp(text: str, field: str) -> Timestamp:
    """An ISO 8601 date or timestamp, normalised for PostgreSQL's jsonpath ``.datetime()``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument.of(
            field, f"must be an ISO 8601 date or timestamp, got {text!r}", "BAD_DATETIME"
        ) from None
    return Timestamp(moment.isoformat())


def scalar_list(values: Sequence[Scalar | Timestamp | tuple[Scalar, ...]], field: str) -> tuple[Scalar, ...]:
    """The values of a filter's list, which holds scalars only (``field`` names the list)."""
    for i, value in enumerate(values):
        if isinstance(value, tuple | Timestamp):
            raise InvalidArgument.of(f"{field}[{i}]", "lists must hold scalars only", "BAD_FILTER")
    return tuple(value for value in values if not isinstance(value, tuple | Timestamp))


def _check_condition(cond: Condition, field: str) -> None:
    if cond.field != "metadata":
        if cond.path:
            raise InvalidArgument.of(f"{field}.path", f"must be empty when the field is the {cond.field}", "BAD_FILTER")
    elif not cond.path or any(not key for key in cond.path):
        raise InvalidArgument.of(f"{field}.path", "must name a metadata field (non-empty keys)", "BAD_FILTER")
    if any("\x00" in key for key in cond.path):
        raise InvalidArgument.of(f"{field}.path", "must not contain NUL characters", "BAD_FILTER")
    _check_path_depth(cond.path, f"{field}.path", "BAD_FILTER")
    problem = _document_field_problem(cond) or _value_problem(cond.operator, cond.value)
    if problem is not None:
        raise InvalidArgument(
            f"{field}.value: {problem}", "BAD_FILTER", {}, [FieldViolation(f"{field}.value", problem)]
        )


def _document_field_problem(cond: Condition) -> str | None:
    """The id is a string; the content a string or missing."""
    if cond.field == "metadata" or cond.operator == "exists":
        return None
    values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
    allowed = (str,) if cond.field == "id" else (str, type(None))
    if all(isinstance(v, allowed) for v in values):
        return None
    return f"the {cond.field} is compared with strings only"


def _value_problem(op: str, value: Scalar | Timestamp | tuple[Scalar, ...]) -> str | None:
    problem: str | None = None
    if op in ("in", "nin"):
        if not isinstance(value, tuple):
            problem = f"operator {op} needs a list value"
    elif isinstance(value, tuple):
        problem = f"operator {op} needs a scalar value, not a list"
    elif isinstance(value, Timestamp) and op not in ("eq", "ne", "gt", "gte", "lt", "lte"):
        problem = f"operator {op} cannot compare with a datetime value"
    elif op == "exists" and not isinstance(value, bool):
        problem = "operator exists needs a boolean value"
    elif op in ("gt", "gte", "lt", "lte") and (value is None or isinstance(value, bool)):
        problem = f"operator {op} needs a number or a string"
    elif op == "contains" and value is None:
        problem = "operator contains needs a non-null value"
    if problem is None and isinstance(value, float) and not math.isfinite(value):
        problem = "must be a finite number"
    values = value if isinstance(value, tuple) else (value,)
    if problem is None and any(isinstance(v, str) and "\x00" in v for v in values):
        problem = "must not contain NUL characters"
    return problem
