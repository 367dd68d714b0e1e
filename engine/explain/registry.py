"""Method registry and the helpers every trace method shares.

Every method returns raw rule values, one map per image -- no min-max scaling, which belongs to display
and would couple the images of a batch.  ``METHODS[name]`` gives a :class:`MethodInfo`; ``version`` is
part of every stored result's key, bump it when a rule's meaning changes.  ``reduced_precision=False``
keeps a method in float32 when the run's precision is ``bf16`` (see :func:`method_precision` and
docs/methods.md).

The call contract, one per kind (this is its one statement; the docs point here).  It is checked when
the function is registered: a signature that does not fit is refused at import, in one line naming the
missing or extra parameter.

* ``kind="trace"``: ``fn(trace, **params) -> (B, gh, gw)``.  ``trace`` is the
  :class:`~engine.explain.trace.AttentionTrace` of one forward + backward shared by every trace method
  of the batch; it carries the explained classes (``trace.targets``).  The map is on the token grid.
* ``kind="model"``: ``fn(model, images, targets, **params) -> (B, h, w)``: the model in eval mode, the
  normalised images ``(B, 3, H, W)`` and the explained classes ``(B,)``; the method runs its own
  passes.  With ``memory_bounded=True`` it also takes ``memory_budget=`` (bytes of activations per pass).

``**params`` are keyword parameters, every one with a default: the experiment's ``[methods]`` table
sets them by name (their annotations are checked there).  The result is a float tensor of one map per
image, finite; a map with NaN or inf is a failure row, never a score.

A name is registered once.  Methods registered from outside the package (plugins: docs/plugins.md)
cannot take a built-in's name; their ``source`` (the sha256 of the module file that registered them)
enters the job keys, so changing a plugin re-runs its jobs.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .trace import AttentionTrace


@dataclass(frozen=True)
class MethodInfo:
    name: str
    fn: Callable[..., torch.Tensor]
    version: int
    needs_grads: bool
    reference: str
    kind: str = "trace"  # 'trace': fn(trace, **params); 'model': fn(model, images, targets, **params)
    layers: Callable[[dict], set[int] | None] | None = None  # blocks a trace method reads (None: all)
    needs_relevance: bool = False  # needs the LRP relevance pass (trace.extras['lrp_cams'])
    baseline: str | None = None  # the reference input the attribution is relative to ('zero': normalised zeros)
    reduced_precision: bool = True  # may run under bf16 autocast when the run's precision is bf16
    memory_bounded: bool = False  # a 'model' method taking memory_budget= (bytes of activations per pass)
    module: str = ""  # the module that registered it
    source: str | None = None  # plugins: sha256 of that module's file (None: built-in, keyed by version alone)

    @property
    def builtin(self) -> bool:
        return is_builtin_module(self.module)

    def __call__(self, *args, **params) -> torch.Tensor:
        return self.fn(*args, **params)


METHODS: dict[str, MethodInfo] = {}


METHOD_CONTRACTS: dict[str, tuple[str, ...]] = {"trace": ("trace",), "model": ("model", "images", "targets")}
BUILTIN_PACKAGE = __name__.split(".")[0]


def is_builtin_module(module: str) -> bool:
    return module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + ".")


def source_sha256(fn) -> str:
    """sha256 (first 16 hex digits) of the file of the module that defines ``fn`` (its own source text
    when the file cannot be read): what a plugin's job keys carry besides its version."""
    try:
        blob = Path(inspect.getsourcefile(fn) or "").read_bytes()
    except (OSError, TypeError):
        try:
            blob = inspect.getsource(fn).encode()
        except (OSError, TypeError):
            blob = f"{fn.__module__}.{fn.__qualname__}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_contract(what: str, fn, positional: tuple[str, ...], keywords: tuple[str, ...] = ()) -> None:
    """Raise ValueError (one line) unless ``fn``'s signature fits a contract: the parameters
    ``positional`` first, in this order; ``keywords`` accepted by name; every other parameter a keyword
    with a default (``**params`` is allowed, ``*args`` is not)."""
    contract = f"fn({', '.join([*positional, *(k + '=' for k in keywords), '**params'])})"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {fn!r} has no signature to check against {contract}") from None
    params = list(sig.parameters.values())
    P = inspect.Parameter
    for i, name in enumerate(positional):
        got = params[i] if i < len(params) else None
        if got is None or got.name != name or got.kind not in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            found = f" (found {got.name!r} in its place)" if got is not None else ""
            raise ValueError(f"{what}: missing parameter {name!r}{found}; the contract is {contract}")
    rest = params[len(positional):]
    names = {p.name: p for p in rest}
    for name in keywords:
        if name not in names or names[name].kind not in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY):
            raise ValueError(f"{what}: missing parameter {name!r}; the contract is {contract}")
    for p in rest:
        if p.kind is P.VAR_POSITIONAL:
            raise ValueError(f"{what}: extra parameter '*{p.name}'; the contract is {contract}")
        if p.kind is P.POSITIONAL_ONLY or (p.default is P.empty and p.kind is not P.VAR_KEYWORD
                                           and p.name not in keywords):
            raise ValueError(f"{what}: extra parameter {p.name!r} without a default (parameters after the "
                             f"contract's are keywords the experiment may set: give it a default); the contract "
                             f"is {contract}")


def check_name(what: str, name: str, registry: dict, fn) -> None:
    """Refuse a name already taken -- by a built-in, or by another function -- in one line.  The same
    function (same module and qualified name, e.g. its module reloaded) registers again in its place."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"{what} name {name!r} must be a non-empty string without surrounding spaces")
    old = registry.get(name)
    if old is None:
        return
    old_fn = old.fn
    if (old_fn.__module__, old_fn.__qualname__) == (fn.__module__, fn.__qualname__):
        return
    if old.builtin:
        raise ValueError(f"{what} {name!r} is a built-in ({old.module}); a plugin cannot replace it: choose "
                         f"another name")
    raise ValueError(f"{what} {name!r} is already registered (by {old.module}); choose another name")


def register_method(name: str, *, version: int, needs_grads: bool, reference: str, kind: str = "trace",
                    needs_relevance: bool = False, layers: Callable[[dict], set[int] | None] | None = None,
                    reduced_precision: bool = True, memory_bounded: bool = False,
                    baseline: str | None = None):
    """Register ``fn`` as method ``name`` (the call contract of each kind: this module's docstring)."""
    if kind not in METHOD_CONTRACTS:
        raise ValueError(f"method {name!r}: kind {kind!r} is not 'trace' or 'model'")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"method {name!r}: version = {version!r} must be an integer >= 1")

    def deco(fn):
        what = f"method {name!r} (kind {kind!r})"
        check_name("method", name, METHODS, fn)
        check_contract(what, fn, METHOD_CONTRACTS[kind], ("memory_budget",) if memory_bounded else ())
        module = getattr(fn, "__module__", "") or ""
        METHODS[name] = MethodInfo(name=name, fn=fn, version=version, needs_grads=needs_grads, reference=reference,
                                   kind=kind, needs_relevance=needs_relevance, layers=layers,
                                   reduced_precision=reduced_precision, memory_bounded=memory_bounded,
                                   baseline=baseline, module=module,
                                   source=None if is_builtin_module(module) else source_sha256(fn))
        return fn
    return deco


def method_precision(name: str, precision: str) -> str:
    """The precision ``name`` runs at in a run of ``precision``: ``fp32`` for methods registered with
    ``reduced_precision=False`` (their maps move too far under bf16), else ``precision``."""
    return precision if METHODS[name].reduced_precision else "fp32"


def output_row(mat: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """The row(s) of a token x token matrix that feed the classifier: (..., N, N) -> (..., N).

    ``pool == 'token'``: the CLS row.  ``pool == 'avg'`` (MAE-style global pooling, or no CLS token):
    the mean of the rows of the pooled tokens (the patch tokens), i.e. the relevance of every token
    for the pooled representation the head sees.
    """
    if trace.pool == "token":
        return mat[..., 0, :]
    return mat[..., trace.num_prefix_tokens:, :].mean(dim=-2)


def cls_row_to_grid(rows: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """(B, N) relevance of each token for the output token(s) -> (B, gh, gw) over patch tokens."""
    gh, gw = trace.grid
    patches = rows[:, trace.num_prefix_tokens:]
    if patches.shape[1] != gh * gw:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fill a {gh}x{gw} grid")
    return patches.reshape(-1, gh, gw).float()


def fuse_heads(a: torch.Tensor, how: str) -> torch.Tensor:
    """(B, heads, N, N) -> (B, N, N) by mean / max / min over heads."""
    if how == "mean":
        return a.mean(dim=1)
    if how == "max":
        return a.amax(dim=1)
    if how == "min":
        return a.amin(dim=1)
    raise ValueError(f"head_fusion {how!r} is not one of ['mean', 'max', 'min']")


def patch_tokens_to_grid(tokens: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """(B, N, C) token tensor -> (B, C, gh, gw) over the patch tokens (prefix tokens dropped)."""
    gh, gw = trace.grid
    patches = tokens[:, trace.num_prefix_tokens:, :]
    if patches.shape[1] != gh * gw:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fill a {gh}x{gw} grid")
    return patches.reshape(tokens.shape[0], gh, gw, tokens.shape[-1]).permute(0, 3, 1, 2)


def require_attention(trace: AttentionTrace, name: str, layers=None) -> None:
    if not trace.attentions:
        raise NotImplementedError(f"{name} is not applicable: {trace.extras.get('no_attention', 'no attention maps')}")
    idx = range(len(trace.attentions)) if layers is None else layers
    if any(trace.attentions[i] is None for i in idx):
        raise ValueError(f"{name} needs attention maps the trace did not keep (captured with layers=...)")


def require_grads(trace: AttentionTrace, name: str, layers=None) -> None:
    require_attention(trace, name, layers)
    idx = range(len(trace.attentions)) if layers is None else layers
    if any(trace.attention_grads[i] is None for i in idx):
        raise ValueError(f"{name} needs attention gradients; capture the trace with with_grads=True")
