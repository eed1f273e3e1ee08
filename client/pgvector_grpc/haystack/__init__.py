"""The Haystack store copier and its command (``copy.py``, ``cli.py``), until they move to the
shared migration package. The Haystack integration itself is
``haystack_integrations.document_stores.pgvector_grpc`` (store, filters, converters) and
``haystack_integrations.components.retrievers.pgvector_grpc`` (retriever)."""
