"""The dashboard's typed, cached access to the results database: :class:`Db`.

A ``Db`` is one version of the database file: its path and modification time.  Every query is a
method with a signature, cached by ``st.cache_data`` on (the query, the ``Db``, its arguments), so a
database swapped in by a finished batch (new mtime) is read afresh on the next rerun.  Below this cache,
queries run on cursors of :mod:`.reader` (one DuckDB instance per catalog version, never one the writer
waits for).  The SQL lives in :mod:`.queries`, :mod:`.queries_compare` and :mod:`.guards`.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from ..store.check import DamagedDatabase, database_problem, read_failure
from ..store.schema import SCHEMA_VERSION
from . import classes as both_classes
from . import guards, queries, queries_compare, shortcuts
from .hints import fill_commands
from .regions import DatasetRegions
from .safe import md


def _db_key(db: "Db") -> tuple[str, float | None]:
    return db.path, db.mtime


# one cache per query; a Db enters the key as (path, mtime) (hash_funcs names it by its qualified type name,
# since the class is not defined yet where its methods are decorated)
_st_cached = st.cache_data(show_spinner=False, max_entries=64, hash_funcs={f"{__name__}.Db": _db_key})


def _cached(method):
    """A cached query whose failed read (a shard file damaged or gone) raises :class:`DamagedDatabase`: one
    sentence naming the file, shown by the app instead of a traceback."""
    cached = _st_cached(method)

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return cached(self, *args, **kwargs)
        except (duckdb.Error, OSError) as exc:
            raise DamagedDatabase(read_failure(self.path, exc)) from None
    return run


@dataclass(frozen=True)
class Db:
    """One version of the results database (``mtime`` None: there is no usable database at ``path``)."""
    path: str
    mtime: float | None

    @property
    def ready(self) -> bool:
        return self.mtime is not None

    @property
    def file(self) -> Path:
        return Path(self.path)

    # -- overview -------------------------------------------------------------------------------
    @_cached
    def table_counts(self) -> pd.DataFrame:
        return queries.table_counts(self.file)

    @_cached
    def runs(self, limit: int = 1000) -> pd.DataFrame:
        return queries.runs(self.file, limit)

    @_cached
    def datasets(self) -> pd.DataFrame:
        return queries.datasets(self.file)

    @_cached
    def models(self) -> pd.DataFrame:
        return queries.models(self.file)

    @_cached
    def method_summary(self) -> pd.DataFrame:
        return queries.method_summary(self.file)

    # -- pickers --------------------------------------------------------------------------------
    @_cached
    def score_options(self) -> pd.DataFrame:
        return queries.score_options(self.file)

    @_cached
    def model_options(self) -> pd.DataFrame:
        return queries_compare.model_options(self.file)

    @_cached
    def method_options(self, dataset_id: str, model_id: str) -> pd.DataFrame:
        return queries.method_options(self.file, dataset_id, model_id)

    @_cached
    def classes(self, dataset_id: str) -> list[str]:
        return queries.classes(self.file, dataset_id)

    @_cached
    def dataset_regions(self, dataset_id: str) -> DatasetRegions:
        """The dataset's own region list, as ingest stored it (:func:`.queries.dataset_regions`)."""
        return queries.dataset_regions(self.file, dataset_id)

    # -- leaderboard, gallery, image ----------------------------------------------------------------
    @_cached
    def leaderboard_view(self, dataset_id: str, metric: str, region: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        return queries.leaderboard_view(self.file, dataset_id, metric, region)

    @_cached
    def gallery_view(self, dataset_id: str, model_id: str, method: str, outcome: str, limit: int, offset: int,
                     sort: str = "image id", *, method_params: str = "{}", label: int | None = None,
                     conf: tuple[float, float] = (0.0, 1.0), metric_filter: tuple[str, str, float, float] | None = None,
                     sort_score: tuple[str, str] | None = None) -> tuple[int, pd.DataFrame]:
        return queries.gallery_view(self.file, dataset_id, model_id, method, outcome, limit, offset, sort, sort_score,
                                    method_params=method_params, label=label, conf=conf,
                                    metric_filter=metric_filter)

    @_cached
    def confusion(self, model_id: str) -> pd.DataFrame:
        return queries.model_confusion(self.file, model_id)

    @_cached
    def image_view(self, dataset_id: str, model_id: str, image_id: str) -> tuple[pd.DataFrame, ...]:
        return queries.image_view(self.file, dataset_id, model_id, image_id)

    # -- misclassified images: maps of both classes (engine/dashboard/classes.py) ---------------------------
    @_cached
    def both_class_maps(self, dataset_id: str, model_id: str, method: str, method_params: str = "{}",
                        image_ids: tuple[str, ...] | None = None) -> pd.DataFrame:
        return both_classes.both_class_maps(self.file, dataset_id, model_id, method, method_params,
                                       None if image_ids is None else list(image_ids))

    @_cached
    def both_class_scores(self, dataset_id: str, model_id: str, method: str, method_params: str = "{}",
                          image_ids: tuple[str, ...] | None = None) -> pd.DataFrame:
        return both_classes.both_class_scores(self.file, dataset_id, model_id, method, method_params,
                                         None if image_ids is None else list(image_ids))

    # -- compare ------------------------------------------------------------------------------------
    @_cached
    def metric_agreement(self, dataset_id: str, model_id: str, region: str) -> pd.DataFrame:
        return queries.metric_agreement(self.file, dataset_id, model_id, region)

    @_cached
    def region_agreement(self, dataset_id: str, model_id: str, metric: str, a: str = "box",
                         b: str = "mask") -> tuple[pd.DataFrame, float]:
        return queries.region_agreement(self.file, dataset_id, model_id, metric, a, b)

    @_cached
    def strategy_comparison(self, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
        return queries_compare.strategy_comparison(self.file, dataset_id, metric, region)

    @_cached
    def metric_pairs(self, dataset_id: str, model_id: str, region: str, metric_a: str,
                     metric_b: str) -> pd.DataFrame:
        return queries_compare.metric_pairs(self.file, dataset_id, model_id, region, metric_a, metric_b)

    @_cached
    def depth_ablation(self, dataset_id: str, model_id: str, region: str) -> pd.DataFrame:
        return queries_compare.depth_ablation(self.file, dataset_id, model_id, region)

    @_cached
    def mprt_curves(self, dataset_id: str, model_id: str) -> pd.DataFrame:
        return queries_compare.mprt_curves(self.file, dataset_id, model_id)

    @_cached
    def mean_curves(self, dataset_id: str, model_id: str) -> pd.DataFrame:
        return queries_compare.mean_curves(self.file, dataset_id, model_id)

    @_cached
    def confounders(self, threshold: float) -> pd.DataFrame:
        return queries_compare.confounders(self.file, threshold)

    # -- guards (docs/metrics.md, "Guards") ---------------------------------------------------------
    @_cached
    def near_chance_lines(self, dataset_id: str, model_ids: tuple[str, ...]) -> list[str]:
        return guards.near_chance_lines(self.file, dataset_id, model_ids)

    @_cached
    def shortcut_lines(self, dataset_id: str, model_ids: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
        return shortcuts.shortcut_lines(self.file, dataset_id, model_ids)

    def model_quality(self, dataset_id: str) -> pd.DataFrame:
        return guards.model_quality(self.file, dataset_id)

    @_cached
    def centre_share(self, dataset_id: str) -> pd.DataFrame:
        return guards.centre_share(self.file, dataset_id)

    # -- runs ---------------------------------------------------------------------------------------
    @_cached
    def run_config(self, run_id: str) -> pd.DataFrame:
        return queries_compare.run_config(self.file, run_id)

    @_cached
    def jobs(self, run_id: str | None = None, status: str | None = None) -> pd.DataFrame:
        return queries_compare.jobs(self.file, run_id, status)

    @_cached
    def jobs_summary(self, run_id: str | None = None) -> pd.DataFrame:
        return queries_compare.jobs_summary(self.file, run_id)

    @_cached
    def failures(self, run_id: str | None = None, stage: str | None = None) -> pd.DataFrame:
        return queries_compare.failures(self.file, run_id, stage)

    @_cached
    def failure_reasons(self, run_id: str | None = None) -> pd.DataFrame:
        return queries_compare.failure_reasons(self.file, run_id)


def db_state() -> Db:
    """The configured database; its ``mtime`` is None when there is no usable database.

    A damaged, foreign or newer database, or one written by an older schema version, is reported on the
    page in one sentence (with what to do) and treated as unusable, instead of failing in a query.
    """
    path = queries.db_path()
    problem = database_problem(path)
    if problem:
        st.error(problem)
        return Db(path, None)
    if not queries.database_exists(path):
        return Db(path, None)
    found = queries.schema_version(path)
    if found < SCHEMA_VERSION:
        st.warning(f"{md(path)} was written with results schema version {found}; this dashboard reads version "
                   f"{SCHEMA_VERSION}. A run rebuilds it: {fill_commands(path)}.")
        return Db(path, None)
    return Db(path, os.path.getmtime(path))
