"""Results storage: the schema, the single writer, the identities rows are keyed by, and the few reads
the runner needs (read.py).  Imports neither streamlit nor engine.metrics nor engine.data."""
from . import identity
from .identity import utc_now
from .schema import SCHEMA_VERSION, TABLES
from .writer import ResultWriter, WriterBusy, canonical_json

__all__ = ["SCHEMA_VERSION", "TABLES", "ResultWriter", "WriterBusy", "canonical_json", "identity", "utc_now"]
