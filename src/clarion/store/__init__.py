"""Persistence. Importing the package registers every table on `schema.metadata`."""

from clarion.store import schema, schema_pipeline, schema_webhooks

__all__ = ["schema", "schema_pipeline", "schema_webhooks"]
