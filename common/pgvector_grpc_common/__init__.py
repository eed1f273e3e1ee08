"""Code that client and server share without either owning it: the vocabulary of collections and
documents, and the engine that moves data in from other stores (:mod:`.migration`).

Imports neither the hand-written client (``pgvector_grpc``) nor the server."""
