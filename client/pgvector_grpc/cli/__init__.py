"""The client's command line: the ``migrate`` verb of ``pgvector-grpc`` (see :mod:`.migrate`)."""
