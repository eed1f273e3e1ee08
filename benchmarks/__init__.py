"""Side-by-side measurements of pgvector-grpc against raw psycopg/pgvector (not tests)."""
