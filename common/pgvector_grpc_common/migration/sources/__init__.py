"""Stores documents are read from."""
