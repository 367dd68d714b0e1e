"""Experiment files: a TOML that lists datasets, models, methods, metrics and limits, validated on load.

An experiment is declarative: it says *what* should be in the database, and the runner works out
which units of work (jobs) are missing (:mod:`engine.runner.jobs`).  Validation happens before any
work starts, with one-line errors naming the key and the allowed values::

    name = "my-study"
    seed = 0
    precision = "bf16"                # fp32 | bf16 (default: bf16 on CUDA, fp32 on CPU)
    threads = 2                       # torch threads per worker process (default: cores // workers)
    publish_every = 10                # seconds: at most one publish of the database per interval (0: per unit)
    plugins = ["my_pkg.my_methods"]   # modules registering methods / metrics of your own (docs/plugins.md)
    [[datasets]]                      # engine.data.DatasetSpec keys (docs/datasets.md)
    name = "wbc1"
    root = "../shared/data/wbc/Dataset 1"     # relative to this file
    ...
    [[models]]
    name = "vit_demo"                 # zoo or timm name
    init = "trained"                  # trained (fine-tuned here) | random (untrained baseline)
    train = { epochs = 20, lr = 2e-3 }
    [[models]]
    name = "vit_base_patch16_224"
    weights = "my_model.safetensors"  # a file, a checkpoint folder (transformers ViT / DeiT), or pretrained = true
    fine_tuning = "as given"          # evaluated as it is: nothing trained, its own head
    class_order = ["b", "a"]          # the dataset class of each head output, when the orders differ
    [methods]
    attention = {}                    # parameters, or a list of parameter tables for variants
    integrated_gradients = { n_steps = 24 }
    [metrics]
    pointing_game = {}
    insertion_auc = { n_steps = 12 }
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import DEVICE_PATTERN
from ..common.precision import resolve_precision
from ..data import DatasetError, DatasetSpec
from ..data.files import parse_toml, special_file
from ..explain import METHODS
from ..metrics import METRICS
from ..metrics.faithfulness import SUBSTRATES
from ..metrics.road import check_percentiles
from ..metrics.sanity import MPRT
from ..models import PretrainConfig, TrainConfig
from .plugins import PluginError, load_plugins, plugin_modules
from .validate import check_config, check_params

GENERATORS = ("blood_smear", "ultrasound", "confounded")
ParamSets = dict[str, Any] | list[dict[str, Any]]


class ExperimentError(ValueError):
    """An invalid experiment file; the message names the file, the key and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    name: str                                   # zoo short name or any timm name
    init: Literal["trained", "random"] = "trained"
    pretrain: Literal["random", "supervised", "dino", "mae"] | None = None  # offline pretraining, then fine-tune
    pretrain_source: str = "generated"          # 'generated', 'target' (the dataset's own images) or a folder
    pretrain_params: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = None                  # local .safetensors / .pth (relative to the file)
    pretrained: bool | None = None              # timm hub weights (needs network); None: the zoo's default
    train: dict[str, Any] = Field(default_factory=dict)   # engine.models.TrainConfig fields
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # grid search on the validation split
    label: str | None = None                    # unique name in this file (default name[:pretrain]:init)
    methods: list[str] | None = None            # explain this model with these methods only (default: all)
    # -- a model evaluated as it is (docs/models.md "Your own model, as it is") --
    fine_tuning: Literal["here", "as given"] = "here"   # 'as given': the weights (with their head) are not trained
    class_order: list[str] | None = None        # as given: the dataset class name of each output of the head

    @property
    def as_given(self) -> bool:
        return self.fine_tuning == "as given"

    @property
    def key(self) -> str:
        return self.label or ":".join(filter(None, [self.name, self.pretrain, "given" if self.as_given else self.init]))

    @field_validator("label")
    @classmethod
    def _label(cls, v):
        """A label becomes part of the model id, which names checkpoint files: a plain name only."""
        msg = None if v is None else _plain_name("label", v)
        if msg:
            raise ValueError(msg.replace("the run's log", "the model's id and checkpoints"))
        return v

    @field_validator("pretrain_params", "train", "grid")
    @classmethod
    def _config_keys(cls, v, info):
        """Keys, types and ranges of the pretraining / training configs (engine.models.PretrainConfig /
        TrainConfig); ``grid`` holds lists of TrainConfig values."""
        config = PretrainConfig if info.field_name == "pretrain_params" else TrainConfig
        check_config(info.field_name, config, v, grid=info.field_name == "grid")
        return v

    @model_validator(mode="after")
    def _ignored(self):
        """Settings the model's init would silently ignore are refused (say what happens instead)."""
        given = [k for k in ("weights", "pretrain", "train", "grid", "pretrain_params") if getattr(self, k)]
        given += ["pretrained"] if self.pretrained else []
        given += ["pretrain_source"] if self.pretrain_source != "generated" else []
        if self.init == "random" and given:
            raise ValueError(f"{sorted(given)} would be ignored: init = 'random' is an untrained model (remove "
                             f"them, or use init = 'trained')")
        if not self.pretrain:
            unused = [k for k in ("pretrain_params", "pretrain_source") if k in given]
            if unused:
                raise ValueError(f"{unused} would be ignored without pretrain = 'supervised' / 'dino' / 'mae' / "
                                 f"'random'")
        elif self.weights or self.pretrained:
            raise ValueError("weights / pretrained would be ignored: pretrain starts from its own pretrained "
                             "backbone (remove them or the pretrain key)")
        if self.weights and self.pretrained:
            raise ValueError("pretrained = true would be ignored: a local weights file wins over the hub weights")
        return self._as_given()

    def _as_given(self):
        """fine_tuning = 'as given' needs weights to evaluate, and nothing that would train them."""
        if not self.as_given:
            if self.class_order:
                raise ValueError("class_order would be ignored: it maps the head of weights evaluated as given "
                                 "(fine_tuning = 'as given'); a fine-tuned model gets a new head in the dataset's "
                                 "order")
            return self
        if self.init == "random":
            raise ValueError("fine_tuning = 'as given' evaluates given weights; init = 'random' is the untrained "
                             "baseline (make it its own [[models]] entry)")
        trains = [k for k in ("pretrain", "train", "grid") if getattr(self, k)]
        if trains:
            raise ValueError(f"{trains} would be ignored: fine_tuning = 'as given' trains nothing (remove them, "
                             f"or remove fine_tuning to fine-tune the weights here)")
        if not (self.weights or self.pretrained):
            raise ValueError("fine_tuning = 'as given' needs the weights to evaluate: weights = a .safetensors / .pth "
                             "file or a checkpoint folder, or pretrained = true (the hub weights of the name)")
        if self.class_order is not None and len(set(self.class_order)) != len(self.class_order):
            raise ValueError(f"class_order {self.class_order} names a class twice")
        return self


class SanityEntry(_Strict):
    images: int = Field(8, ge=0)                # first test images per model (0: off)
    methods: list[str] | None = None            # default: every method of the experiment
    models: Literal["trained", "all"] = "trained"


DEVICE = re.compile(DEVICE_PATTERN)
BAD_NAME = re.compile(r"[/\\\x00-\x1f]")


def _plain_name(what: str, name) -> str | None:
    """Why ``name`` cannot name a file in a folder of ours (None when it can)."""
    if not isinstance(name, str) or not name.strip():
        return f"{what} must be a non-empty string"
    if BAD_NAME.search(name) or name.strip() in (".", "..") or len(name) > 200:
        return f"{what} {name!r} must be a plain name (no '/', '\\', control characters or '..'; at most 200 " \
               f"characters): it names files such as the run's log"
    return None


class Experiment(_Strict):
    name: str
    seed: int = 0
    device: str = "cpu"
    batch_size: int = Field(32, ge=1)
    precision: Literal["fp32", "bf16"] | None = None  # None: bf16 on CUDA, fp32 on CPU (--precision wins)
    threads: int | None = Field(None, ge=1)     # torch threads per worker (None: cores // workers; --threads wins)
    # at most one publish of the database per this many seconds (group commit; 0: one per finished unit)
    publish_every: float = Field(10.0, ge=0, le=3600)
    # modules registering methods / metrics (engine.runner.plugins), imported before [methods] and [metrics]
    # are checked; the entry-point group's modules are imported too
    plugins: list[str] = Field(default_factory=list, validate_default=True)
    datasets: list[dict[str, Any]] = Field(min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    methods: dict[str, ParamSets] = Field(min_length=1)
    metrics: dict[str, dict[str, Any]] = Field(min_length=1)
    regions: list[str] | None = None            # score only these regions (default: every region)
    sanity: SanityEntry = Field(default_factory=SanityEntry)
    work_dir: str = "."                         # generated data and checkpoints go here (relative to the file)
    checkpoints: str = "checkpoints"            # checkpoint cache, relative to work_dir
    base_dir: str = "."                         # set by load_experiment: relative paths resolve here

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        msg = _plain_name("name", v)
        if msg:
            raise ValueError(msg)
        return v

    @field_validator("regions")
    @classmethod
    def _regions(cls, v):
        if v is not None and not v:
            raise ValueError("regions = []: nothing would be scored (remove the key to score every region)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if not DEVICE.match(v):
            raise ValueError(f"{v!r} is not a device; use 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return v

    @field_validator("plugins")
    @classmethod
    def _plugins(cls, v):
        try:
            load_plugins(v)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("methods")
    @classmethod
    def _methods(cls, v):
        for name, sets in v.items():
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}")
            info = METHODS[name]
            for params in (sets if isinstance(sets, list) else [sets]):
                check_params("method", name, info.fn, params, skip=1 if info.kind == "trace" else 3)
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v):
        for name, params in v.items():
            if name == MPRT.name:
                raise ValueError(f"metric {name!r} is a {MPRT.kind} check: configure it under [sanity]")
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; registered: {sorted(METRICS)}")
            check_params("metric", name, METRICS[name].fn, params, skip=1 if METRICS[name].kind == "faithfulness"
                          else 2)
            if "substrate" in params and params["substrate"] not in SUBSTRATES:
                raise ValueError(f"metric {name!r}: substrate {params['substrate']!r}; allowed: {list(SUBSTRATES)}")
            if "percentiles" in params:
                try:
                    check_percentiles(params["percentiles"])
                except ValueError as exc:
                    raise ValueError(f"metric {name!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _names(self):
        names = [d.get("name") for d in self.datasets]
        if any(not isinstance(n, str) or not n for n in names):
            raise ValueError("every [[datasets]] block needs a name")
        for n in names:
            msg = _plain_name("dataset name", n)
            if msg:
                raise ValueError(msg)
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        for d in self.datasets:
            g = d.get("generate")
            if g is not None and g not in GENERATORS:
                raise ValueError(f"dataset {d['name']!r}: generate = {g!r}; allowed: {list(GENERATORS)}")
        labels = [m.key for m in self.models]
        if len(set(labels)) != len(labels):
            raise ValueError(f"models must differ in name, pretrain, init or label; got {labels}")
        for d in self.datasets:
            bad = sorted(set(d.get("models") or []) - set(labels))
            if bad:
                raise ValueError(f"dataset {d['name']!r}: models {bad} are not among {labels}")
        for m in self.models:
            bad = sorted(set(m.methods or []) - set(self.methods))
            if bad:
                raise ValueError(f"model {m.key!r}: methods {bad} are not in [methods]")
        if self.sanity.methods:
            bad = sorted(set(self.sanity.methods) - set(self.methods))
            if bad:
                raise ValueError(f"sanity.methods {bad} are not in [methods]")
        return self

    def plugin_modules(self) -> list[str]:
        """The plugin modules every worker imports before its units: the entry points', then ``plugins``."""
        return plugin_modules(self.plugins)

    def method_variants(self, entry: ModelEntry | None = None) -> list[tuple[str, dict]]:
        """(method, params) for every configured variant (of one model entry's ``methods``), in file order."""
        out = []
        for name, sets in self.methods.items():
            if entry is not None and entry.methods and name not in entry.methods:
                continue
            for params in (sets if isinstance(sets, list) else [sets]):
                out.append((name, dict(params)))
        return out

    def model_entries(self, dataset: dict | None = None) -> list[ModelEntry]:
        """The model entries (of one dataset block: its ``models`` list, default all), with local paths
        (weights, a pretraining folder) made absolute."""
        out = []
        wanted = (dataset or {}).get("models")
        for m in self.models:
            if wanted and m.key not in wanted:
                continue
            paths = {}
            if m.weights:
                paths["weights"] = str(self.resolve(m.weights))
            if m.pretrain_source not in ("generated", "target"):
                paths["pretrain_source"] = str(self.resolve(m.pretrain_source))
            out.append(m.model_copy(update=paths))
        return out

    def resolved_precision(self, device: str | None = None, precision: str | None = None) -> str:
        """``precision`` (the CLI's), else the file's, else the default of ``device`` (else the file's device)."""
        return resolve_precision(precision or self.precision, device or self.device)

    def resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{where}: {msg}"


def parse_experiment(data: dict, base_dir: str | Path = ".", source: str = "<experiment>") -> Experiment:
    try:
        exp = Experiment(**{**data, "base_dir": str(Path(base_dir).resolve())})
    except ValidationError as exc:
        allowed = sorted(f for f in Experiment.model_fields if f != "base_dir")
        extra = f" (top-level keys: {allowed})" if exc.errors()[0]["type"] == "extra_forbidden" else ""
        raise ExperimentError(f"{source}: {_first_error(exc)}{extra}") from None
    for i, block in enumerate(exp.datasets):  # keys and values only; files are checked by check-data / the run
        if "generate" in block:
            continue
        try:
            spec_keys = {k: v for k, v in block.items() if k != "models"}
            DatasetSpec.from_dict({**spec_keys, "root": str(exp.resolve(block.get("root", ".")))})
        except DatasetError as exc:
            raise ExperimentError(f"{source}: datasets.{i}: {exc}") from None
    return exp


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment TOML; relative paths in it resolve against its folder."""
    path = Path(path)
    odd = special_file(path)
    if odd:
        raise ExperimentError(f"{path}: is {odd}, not a regular file (give the .toml file)")
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExperimentError(f"{path}: no such experiment file") from None
    except IsADirectoryError:
        raise ExperimentError(f"{path}: is a folder, not an experiment file (give the .toml file)") from None
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); TOML files are UTF-8"
                              ) from None
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    return parse_experiment(data, path.parent, str(path))
