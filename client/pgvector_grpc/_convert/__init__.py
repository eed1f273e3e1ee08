"""Pure conversions between protobuf messages and the client's public types, shared by both
clients: request builders and response parsers, one module per part of the API."""
