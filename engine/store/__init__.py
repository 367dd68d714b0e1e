"""Results storage: schema, the single writer, and the dashboard's read-only queries."""
from .check import DatabaseRefused, check_database
from .schema import SCHEMA_VERSION, TABLES
from .writer import ResultWriter, WriterBusy, canonical_json

__all__ = ["SCHEMA_VERSION", "TABLES", "DatabaseRefused", "ResultWriter", "WriterBusy", "canonical_json",
           "check_database"]
