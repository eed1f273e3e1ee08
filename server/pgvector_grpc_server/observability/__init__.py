"""What operators watch: Prometheus metrics, OpenTelemetry traces. Knows no gRPC and no SQL driver."""
