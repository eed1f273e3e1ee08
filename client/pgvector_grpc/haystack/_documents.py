"""The document converters ``copy.py`` uses, until it moves to the shared migration package."""

from haystack_integrations.document_stores.pgvector_grpc.converters import from_client_document, to_client_document

__all__ = ["from_client_document", "to_client_document"]
