"""Use cases: validated domain operations over the storage layer."""
