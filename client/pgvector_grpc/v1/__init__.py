"""Generated from protos/pgvector_grpc/v1 by scripts/gen_protos.py. Do not edit."""
