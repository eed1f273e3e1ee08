"""gRPC transport: the only package importing grpc; converts protobuf <-> domain, maps errors."""
