FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos protos
COPY sql sql
COPY client client
COPY server server
RUN pip install --no-cache-dir .
EXPOSE 50051
ENV PGVECTOR_GRPC_LISTEN=0.0.0.0:50051
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["pgvector-grpc", "health", "--address", "127.0.0.1:50051"]
CMD ["pgvector-grpc", "serve"]
