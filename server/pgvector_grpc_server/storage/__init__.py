"""The only package that speaks SQL: psycopg pool, schema, COPY, search_documents."""
