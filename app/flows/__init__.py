"""Flows: the YAML voice flows admins write, their schema, loader and engine."""
