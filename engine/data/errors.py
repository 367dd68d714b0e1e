"""Errors raised by the dataset code; every message names the file (or spec key) and the reason."""


class DatasetError(ValueError):
    """A problem with a dataset; the message names the file and the reason."""


SEVERITIES = ("error", "warning", "note")


class Problem:
    """One finding of check-data: ``error`` (the item cannot be used), ``warning`` (handled, but the
    data are not what they claim), ``note`` (worth knowing, not wrong)."""

    __slots__ = ("severity", "file", "reason")

    def __init__(self, severity: str, file, reason: str):
        self.severity, self.file, self.reason = severity, str(file), reason

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"

    def __repr__(self) -> str:
        return f"Problem({self.severity!r}, {self.file!r}, {self.reason!r})"


class Issues:
    """Collects problems (check-data) or raises the first error (loading)."""

    def __init__(self, collect: bool):
        self.collect = collect
        self.items: list[Problem] = []

    def error(self, file, reason: str, fatal: bool = False):
        """Record an error; raises unless collecting (or when ``fatal``: nothing can follow)."""
        if fatal or not self.collect:
            raise DatasetError(f"{file}: {reason}")
        self.items.append(Problem("error", file, reason))

    def warn(self, file, reason: str, severity: str = "warning"):
        self.items.append(Problem(severity, file, reason))
