"""Domain values and rules: no gRPC, no SQL."""
