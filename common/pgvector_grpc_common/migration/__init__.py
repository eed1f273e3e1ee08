"""Moving documents in from other stores: sources, the resumable engine, verification, events."""
