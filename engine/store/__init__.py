"""Results storage: the schema, the single writer, the identities rows are keyed by, the database check,
and the few reads the runner needs (read.py).  Imports neither streamlit nor engine.metrics nor engine.data."""
from . import identity
from .check import DatabaseRefused, check_database
from .identity import utc_now
from .schema import SCHEMA_VERSION, TABLES
from .writer import ResultWriter, WriterBusy, canonical_json

__all__ = ["SCHEMA_VERSION", "TABLES", "DatabaseRefused", "ResultWriter", "WriterBusy", "canonical_json",
           "check_database", "identity", "utc_now"]
