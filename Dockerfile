FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos protos
COPY sql sql
COPY common common
COPY client client
COPY server server
RUN pip install --no-cache-dir . && useradd --system --no-create-home pgvector-grpc
USER pgvector-grpc
EXPOSE 50051
# Reachable from other containers, so authentication is always on: create keys with
# `pgvector-grpc keys create` (it writes with PGVECTOR_GRPC_ADMIN_DATABASE_URL) or configure JWTs
# (PGVECTOR_GRPC_JWT_*). DATABASE_URL is the app role pgvector_grpc_app's (row-level security holds it);
# PGVECTOR_GRPC_ADMIN_DATABASE_URL applies sql/.
ENV PGVECTOR_GRPC_LISTEN=0.0.0.0:50051 \
    PGVECTOR_GRPC_REQUIRE_AUTH=true
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["pgvector-grpc", "health", "--address", "127.0.0.1:50051"]
CMD ["pgvector-grpc", "serve"]
