"""Persistence. Importing the package registers every table on `schema.metadata`."""

from clarion.store import schema, schema_pipeline, schema_respect, schema_webhooks

__all__ = ["schema", "schema_pipeline", "schema_respect", "schema_webhooks"]
