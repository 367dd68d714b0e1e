"""What the compute side and the read side share: the vocabulary and rules both need (method labels, the
verdicts of the guards, the MPRT threshold) and the precision policy.  Imports no other engine package;
its modules are small leaves, and only :mod:`.precision` imports torch, so the read layer
(:mod:`engine.dashboard`, ``status`` / ``report`` / ``table``) can use the rest without loading torch."""
