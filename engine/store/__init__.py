"""Results storage: schema, the single writer, and the dashboard's read-only queries."""
from .schema import SCHEMA_VERSION, TABLES
from .writer import ResultWriter, WriterBusy, canonical_json

__all__ = ["SCHEMA_VERSION", "TABLES", "ResultWriter", "WriterBusy", "canonical_json"]
