"""The published DuckDB schema as data (documented in docs/schema.md).  Bump SCHEMA_VERSION on change.

:data:`TABLES` declares each table's columns (name, type, comment) and keys; the DDL (:func:`ddl`), the
column lists behind every view and ``CAST`` (:func:`columns`) and the keys (:func:`primary_key`,
:func:`row_key`) are generated from it, so reformatting a declaration cannot change them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 8  # 8: summary's shared-image and gap-CI columns, the shortcut table, target_maps,
#                     target_scores and the datasets' region columns (a version-7 file gets them, empty /
#                     NULL, when a writer opens it)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a DuckDB type: VARCHAR, INTEGER, DOUBLE, FLOAT[], JSON, ...
    comment: str = ""


@dataclass(frozen=True)
class Table:
    """One table: its columns in order, its primary key (one column, or None) and its replace key (the
    columns identifying one result; re-writing a key replaces the old rows instead of duplicating them)."""
    columns: tuple[Column, ...]
    primary_key: str | None = None
    replace_key: tuple[str, ...] = field(default=())

    def __post_init__(self):
        cols = tuple(c if isinstance(c, Column) else Column(*c) for c in self.columns)
        object.__setattr__(self, "columns", cols)
        names = [c.name for c in cols]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column in {names}")
        missing = {self.primary_key, *self.replace_key} - {None, *names}
        if missing:
            raise ValueError(f"key columns {sorted(missing)} are not among {names}")


METHOD = ("method", "method_version", "method_params")
METRIC = ("metric", "metric_version", "metric_params")

# tables stored as immutable Parquet shards behind a view (engine/store/shards.py), not inside the DuckDB file;
# one row per image (or per image and method / metric), so they hold nearly all of a study's bytes
SHARDED: tuple[str, ...] = ("images", "predictions", "explanations", "scores", "curves", "sanity", "target_maps",
                            "target_scores")

TABLES: dict[str, Table] = {
    "meta": Table(primary_key="key", columns=(
        ("key", "VARCHAR"),
        ("value", "VARCHAR"),
    )),
    "runs": Table(primary_key="run_id", columns=(
        ("run_id", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("status", "VARCHAR", "running / finished / failed"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
        ("host", "VARCHAR"),
        ("git_commit", "VARCHAR"),
        ("versions", "JSON"),
        ("config", "JSON"),
        ("counts", "JSON", "jobs done / skipped / failed, failed items"),
    )),
    "datasets": Table(primary_key="dataset_id", columns=(
        ("dataset_id", "VARCHAR", "name@fingerprint"),
        ("name", "VARCHAR"),
        ("root", "VARCHAR", "absolute dataset root; image paths are relative to it"),
        ("fingerprint", "VARCHAR"),
        ("classes", "VARCHAR[]"),
        ("input_size", "INTEGER"),
        ("resize_mode", "VARCHAR", "resize / letterbox"),
        ("n_images", "INTEGER"),
        ("spec", "JSON"),
        ("regions", "VARCHAR[]", "every region name, in display order: mask regions, box_from_mask, box regions (v8)"),
        ("mask_regions", "VARCHAR[]", "the regions drawn from masks or COCO segmentations, in order (v8)"),
        ("box_regions", "VARCHAR[]", "the given box regions ('box' or the box_regions names), in order (v8)"),
        ("box_from_mask", "VARCHAR", "the mask region 'box_from_mask' is derived from; NULL: none (v8)"),
    )),
    "images": Table(replace_key=("dataset_id", "image_id"), columns=(
        ("dataset_id", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("split", "VARCHAR"),
        ("label", "INTEGER"),
        ("label_name", "VARCHAR"),
        ("path", "VARCHAR", "relative to datasets.root"),
        ("mask_path", "VARCHAR"),
        ("boxes_path", "VARCHAR"),
        ("width", "INTEGER"),
        ("height", "INTEGER"),
        ("regions", "VARCHAR[]"),
    )),
    "models": Table(primary_key="model_id", columns=(
        ("model_id", "VARCHAR", "name:init@sha256[:12]"),
        ("dataset_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("timm_name", "VARCHAR"),
        ("init", "VARCHAR", "trained / random / ..."),
        ("arch", "VARCHAR", "vit / deit / swin / ... (for grouping)"),
        ("strategy", "VARCHAR", "the weights' origin as timm / the zoo names it: random / supervised / dino / ..."),
        ("checkpoint", "VARCHAR"),
        ("sha256", "VARCHAR"),
        ("input_size", "INTEGER"),
        ("grid_h", "INTEGER"),
        ("grid_w", "INTEGER"),
        ("num_prefix_tokens", "INTEGER"),
        ("val_accuracy", "DOUBLE"),
        ("test_accuracy", "DOUBLE"),
        ("test_balanced_accuracy", "DOUBLE"),
        ("test_macro_f1", "DOUBLE"),
        ("test_auroc", "DOUBLE", "macro one-vs-rest"),
        ("confusion", "JSON", "test confusion matrix, rows = true class, columns = predicted"),
        ("hparams", "JSON"),
        ("history", "JSON"),
        ("precision", "VARCHAR", "fp32 / bf16: training and test predictions (NULL before version 5)"),
        ("pretraining", "VARCHAR", "before fine-tuning: none / supervised / dino / mae / hub:<tag> / ... (v6)"),
        ("fine_tuning", "VARCHAR", "trained (fine-tuned here) / untrained (random-weights baseline) (v6)"),
    )),
    "methods": Table(primary_key="method", columns=(
        ("method", "VARCHAR"),
        ("version", "INTEGER"),
        ("needs_grads", "BOOLEAN"),
        ("reference", "VARCHAR"),
        ("baseline", "VARCHAR", "reference input of the attribution ('zero' = normalised zeros), else NULL"),
    )),
    "metrics": Table(primary_key="metric", columns=(
        ("metric", "VARCHAR"),
        ("version", "INTEGER"),
        ("kind", "VARCHAR"),
        ("higher_is_better", "BOOLEAN"),
        ("reference", "VARCHAR"),
    )),
    "predictions": Table(replace_key=("dataset_id", "model_id", "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("label", "INTEGER"),
        ("pred", "INTEGER"),
        ("confidence", "DOUBLE", "softmax probability of pred"),
        ("probs", "FLOAT[]"),
        ("precision", "VARCHAR", "fp32 / bf16 of the forward pass"),
    )),
    "explanations": Table(replace_key=("dataset_id", "model_id", *METHOD, "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR", "canonical JSON"),
        ("image_id", "VARCHAR"),
        ("target", "INTEGER", "explained class"),
        ("grid_h", "INTEGER"),
        ("grid_w", "INTEGER"),
        ("map", "FLOAT[]", "row-major (grid_h * grid_w) raw values"),
        ("precision", "VARCHAR", "fp32 / bf16 the map was computed at"),
    )),
    "scores": Table(replace_key=("dataset_id", "model_id", *METHOD, *METRIC, "region", "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("metric_version", "INTEGER"),
        ("metric_params", "VARCHAR"),
        ("region", "VARCHAR", "box / mask / box_from_mask / ... ; 'none' for faithfulness"),
        ("image_id", "VARCHAR"),
        ("value", "DOUBLE", "NULL where undefined (e.g. empty region)"),
        ("precision", "VARCHAR", "fp32 / bf16: of the map (localisation) or of the forwards (faithfulness)"),
    )),
    # maps of a class other than the explained one, and their localisation scores: for a misclassified image the
    # map of its true class (role 'true') beside the predicted class's map in explanations / scores (v8)
    "target_maps": Table(replace_key=("dataset_id", "model_id", *METHOD, "image_id", "role"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("role", "VARCHAR", "true: the image's true class (the image is misclassified)"),
        ("target", "INTEGER", "explained class of this map"),
        ("grid_h", "INTEGER"),
        ("grid_w", "INTEGER"),
        ("map", "FLOAT[]", "row-major (grid_h * grid_w) raw values"),
        ("precision", "VARCHAR", "fp32 / bf16 the map was computed at"),
    )),
    "target_scores": Table(replace_key=("dataset_id", "model_id", *METHOD, *METRIC, "region", "image_id", "role"),
                           columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("metric", "VARCHAR", "localisation metrics only"),
        ("metric_version", "INTEGER"),
        ("metric_params", "VARCHAR"),
        ("region", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("role", "VARCHAR", "as target_maps.role"),
        ("target", "INTEGER", "explained class of the map scored"),
        ("value", "DOUBLE", "NULL where undefined or the map is degenerate"),
        ("precision", "VARCHAR", "fp32 / bf16 of the map"),
    )),
    "curves": Table(replace_key=("dataset_id", "model_id", *METHOD, *METRIC, "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("metric", "VARCHAR", "insertion_auc / deletion_auc"),
        ("metric_version", "INTEGER"),
        ("metric_params", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("x", "FLOAT[]", "fraction of pixels switched"),
        ("y", "FLOAT[]", "softmax probability of the explained class"),
        ("precision", "VARCHAR", "fp32 / bf16 of the forwards"),
    )),
    "sanity": Table(replace_key=("dataset_id", "model_id", *METHOD, "step", "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("step", "INTEGER", "1 = head randomised, then each block top-down, last = embeddings"),
        ("layer", "VARCHAR", "the group randomised at this step (cumulative)"),
        ("image_id", "VARCHAR"),
        ("spearman", "DOUBLE", "rank correlation with the original map (NULL for a constant map)"),
        ("ssim", "DOUBLE"),
        ("precision", "VARCHAR", "fp32 / bf16 of the explanation passes"),
    )),
    "summary": Table(replace_key=("dataset_id", "model_id", *METHOD, *METRIC, "region"), columns=(
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("metric_version", "INTEGER"),
        ("metric_params", "VARCHAR"),
        ("region", "VARCHAR"),
        ("n", "INTEGER", "images with a defined score"),
        ("n_undefined", "INTEGER"),
        ("mean", "DOUBLE"),
        ("ci_low", "DOUBLE", "95 % BCa bootstrap interval of the mean (seeded)"),
        ("ci_high", "DOUBLE"),
        ("n_degenerate", "INTEGER", "all-zero / constant / non-finite maps: not scored, counted here"),
        ("substrate", "VARCHAR", "faithfulness: 'zero' / 'blur' (what pixels are switched to / from)"),
        ("gap_random", "DOUBLE", "mean paired difference to the random map (NULL without it)"),
        ("p_random", "DOUBLE", "its Holm-adjusted Wilcoxon p (the pairwise family)"),
        ("gap_centre", "DOUBLE", "the same against the centre map"),
        ("p_centre", "DOUBLE"),
        ("n_common", "INTEGER", "shared images: every ranked method of this (model, metric, region) scored (v8)"),
        ("mean_common", "DOUBLE", "this method's mean over them: what the rank and the bold mark use (v8)"),
        ("gap_random_ci_low", "DOUBLE", "95 % BCa bootstrap interval of gap_random (paired, shared images; v8)"),
        ("gap_random_ci_high", "DOUBLE"),
        ("gap_centre_ci_low", "DOUBLE", "the same for gap_centre (v8)"),
        ("gap_centre_ci_high", "DOUBLE"),
    )),
    "pairwise": Table(replace_key=("dataset_id", "model_id", *METRIC, "region", "method_a", "method_b"), columns=(
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("metric_version", "INTEGER"),
        ("metric_params", "VARCHAR"),
        ("region", "VARCHAR"),
        ("method_a", "VARCHAR", "method name, or name + canonical params when not default"),
        ("method_b", "VARCHAR"),
        ("n", "INTEGER", "images scored by both among the shared images (v8; before: all scored by both)"),
        ("mean_diff", "DOUBLE", "mean(a - b)"),
        ("p_value", "DOUBLE", "Wilcoxon signed-rank, two-sided"),
        ("p_holm", "DOUBLE", "Holm-adjusted over all pairs of this (model, metric, region)"),
    )),
    "model_quality": Table(replace_key=("dataset_id", "model_id"), columns=(
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("n", "INTEGER", "test images predicted"),
        ("n_classes", "INTEGER", "classes present among their labels"),
        ("accuracy", "DOUBLE"),
        ("accuracy_ci_low", "DOUBLE", "95 % percentile bootstrap over images (seeded)"),
        ("accuracy_ci_high", "DOUBLE"),
        ("balanced_accuracy", "DOUBLE"),
        ("balanced_accuracy_ci_low", "DOUBLE"),
        ("balanced_accuracy_ci_high", "DOUBLE"),
        ("chance_majority", "DOUBLE", "accuracy of always predicting the majority class"),
        ("chance_uniform", "DOUBLE", "1 / n_classes: balanced accuracy of any image-blind classifier"),
        ("twin_model_id", "VARCHAR", "its random-weights twin (same dataset and architecture), if any"),
        ("twin_diff", "DOUBLE", "balanced accuracy minus the twin's, same images"),
        ("twin_diff_ci_low", "DOUBLE", "paired percentile bootstrap"),
        ("twin_diff_ci_high", "DOUBLE"),
        ("near_chance", "BOOLEAN", "balanced-accuracy CI reaches chance (1 / n_classes)"),
    )),
    "degenerate_maps": Table(replace_key=("dataset_id", "model_id", *METHOD, "image_id"), columns=(
        ("run_id", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("kind", "VARCHAR", "zero / constant / nonfinite"),
    )),
    "region_stats": Table(replace_key=("dataset_id", "region", "image_id"), columns=(
        ("dataset_id", "VARCHAR"),
        ("region", "VARCHAR"),
        ("image_id", "VARCHAR"),
        ("area", "DOUBLE", "fraction of the (model-input) image the region covers"),
        ("covers_centre", "BOOLEAN", "the region holds a pixel touching the image centre"),
    )),
    "shortcut": Table(replace_key=("dataset_id",), columns=(
        ("dataset_id", "VARCHAR"),
        ("n_train", "INTEGER", "training images the metadata rule was fitted on (v8)"),
        ("n_test", "INTEGER", "test images it was scored on"),
        ("features", "VARCHAR[]", "the features the rule rests on, most important first"),
        ("candidates", "VARCHAR[]", "the features that vary (what the rule could use)"),
        ("balanced_accuracy", "DOUBLE", "of the rule on the test split"),
        ("ci_low", "DOUBLE", "95 % percentile bootstrap over test images (seeded)"),
        ("ci_high", "DOUBLE"),
        ("chance", "DOUBLE", "1 / classes in the test split"),
        ("flagged", "BOOLEAN", "the label is predictable from the metadata alone"),
        ("rule", "VARCHAR", "the fitted tree as text"),
        ("reason", "VARCHAR", "why the check could not run (NULL when it ran)"),
        ("test_predictions", "JSON", "image id -> class the rule predicts"),
    )),
    "trials": Table(replace_key=("search_key", "trial"), columns=(
        ("dataset_id", "VARCHAR"),
        ("model_name", "VARCHAR", "zoo / timm name"),
        ("strategy", "VARCHAR"),
        ("search_key", "VARCHAR", "content key of the whole grid search (dataset, model, grid, seed)"),
        ("trial", "INTEGER"),
        ("params", "JSON", "the trial's hyper-parameters (lr, weight_decay, epochs, ...)"),
        ("best_epoch", "INTEGER"),
        ("val_loss", "DOUBLE"),
        ("val_accuracy", "DOUBLE"),
        ("val_balanced_accuracy", "DOUBLE"),
        ("selected", "BOOLEAN", "the configuration kept"),
        ("seconds", "DOUBLE"),
        ("history", "JSON", "per-epoch curves"),
        ("run_id", "VARCHAR"),
    )),
    "jobs": Table(primary_key="job_key", columns=(
        ("job_key", "VARCHAR", "content key: dataset fingerprint, checkpoint hash, rule + params"),
        ("run_id", "VARCHAR", "the run that finished it"),
        ("experiment", "VARCHAR"),
        ("kind", "VARCHAR", "train / evaluate / sanity"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("method_version", "INTEGER"),
        ("method_params", "VARCHAR"),
        ("metrics", "JSON", "{metric: {version, params}} scored by this job"),
        ("status", "VARCHAR", "done / failed"),
        ("n_items", "INTEGER"),
        ("n_failed", "INTEGER"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
        ("seconds", "DOUBLE"),
    )),
    "failures": Table(replace_key=("job_key", "item", "stage", "method"), columns=(
        ("run_id", "VARCHAR"),
        ("job_key", "VARCHAR"),
        ("dataset_id", "VARCHAR"),
        ("model_id", "VARCHAR"),
        ("method", "VARCHAR"),
        ("item", "VARCHAR", "image id, or '*' for the whole job"),
        ("stage", "VARCHAR", "load / explain / score / train / ..."),
        ("reason", "VARCHAR"),
        ("failed_at", "TIMESTAMP"),
    )),
}

# rows identifying one result (each table's replace key)
REPLACE_KEYS: dict[str, tuple[str, ...]] = {name: t.replace_key for name, t in TABLES.items() if t.replace_key}

# every other table but ``meta`` (bookkeeping and summaries: runs, jobs, models, summary, pairwise, ...) is also
# published as Parquet files behind a view since version 7, so the catalog file holds only ``meta`` and views; the
# writer keeps these tables whole in memory and writes, per publish, only the rows that changed (writer.py)
HELD: tuple[str, ...] = tuple(t for t in TABLES if t not in SHARDED and t != "meta")
PARQUET: tuple[str, ...] = SHARDED + HELD


def primary_key(table: str) -> str | None:
    return TABLES[table].primary_key


def row_key(table: str) -> tuple[str, ...]:
    """The columns that identify a row of ``table``: its replace key, else its primary key, else every column."""
    t = TABLES[table]
    if t.replace_key:
        return t.replace_key
    return (t.primary_key,) if t.primary_key else tuple(c.name for c in t.columns)


def columns(table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of ``table`` as declared above."""
    return [(c.name, c.type) for c in TABLES[table].columns]


def ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table``, generated from its declaration (comments included)."""
    t = TABLES[table]
    lines = []
    for i, c in enumerate(t.columns):
        sep = "," if i < len(t.columns) - 1 else ""
        key = " PRIMARY KEY" if c.name == t.primary_key else ""
        lines.append(f"    {c.name} {c.type}{key}{sep}" + (f"  -- {c.comment}" if c.comment else ""))
    return f"CREATE TABLE IF NOT EXISTS {table} (\n" + "\n".join(lines) + "\n)"


def create_schema(con, skip: tuple[str, ...] = ()) -> None:
    """Create missing tables (but those in ``skip``), and add columns that a database from an older
    version lacks (the migration is additive: old rows get NULL in new columns)."""
    for name in TABLES:
        if name in skip:
            continue
        con.execute(ddl(name))
        have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = ?", [name]).fetchall()}
        for col, typ in columns(name):
            if col not in have:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {col} {typ}")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
