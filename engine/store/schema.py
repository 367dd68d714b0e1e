"""The published DuckDB schema (documented in docs/schema.md).  Bump SCHEMA_VERSION on change."""
from __future__ import annotations

SCHEMA_VERSION = 8

# tables stored as immutable Parquet shards behind a view (engine/store/shards.py), not inside the DuckDB file;
# one row per image (or per image and method / metric), so they hold nearly all of a study's bytes
SHARDED: tuple[str, ...] = ("images", "predictions", "explanations", "scores", "curves", "sanity")

TABLES: dict[str, str] = {
    "meta": """
        key VARCHAR PRIMARY KEY,
        value VARCHAR""",
    "runs": """
        run_id VARCHAR PRIMARY KEY,
        kind VARCHAR,
        status VARCHAR,             -- running / finished / failed
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        host VARCHAR,
        git_commit VARCHAR,
        versions JSON,
        config JSON,
        counts JSON                 -- jobs done / skipped / failed, failed items""",
    "datasets": """
        dataset_id VARCHAR PRIMARY KEY,  -- name@fingerprint
        name VARCHAR,
        root VARCHAR,               -- absolute dataset root; image paths are relative to it
        fingerprint VARCHAR,
        classes VARCHAR[],
        input_size INTEGER,
        resize_mode VARCHAR,        -- resize / letterbox
        n_images INTEGER,
        spec JSON""",
    "images": """
        dataset_id VARCHAR,
        image_id VARCHAR,
        split VARCHAR,
        label INTEGER,
        label_name VARCHAR,
        path VARCHAR,               -- relative to datasets.root
        mask_path VARCHAR,
        boxes_path VARCHAR,
        width INTEGER,
        height INTEGER,
        regions VARCHAR[]""",
    "models": """
        model_id VARCHAR PRIMARY KEY,  -- name:init@sha256[:12]
        dataset_id VARCHAR,
        name VARCHAR,
        timm_name VARCHAR,
        init VARCHAR,               -- trained / random / ...
        arch VARCHAR,               -- vit / deit / swin / ... (for grouping)
        strategy VARCHAR,           -- the weights' origin as timm / the zoo names it: random / supervised / dino / ...
        checkpoint VARCHAR,
        sha256 VARCHAR,
        input_size INTEGER,
        grid_h INTEGER,
        grid_w INTEGER,
        num_prefix_tokens INTEGER,
        val_accuracy DOUBLE,
        test_accuracy DOUBLE,
        test_balanced_accuracy DOUBLE,
        test_macro_f1 DOUBLE,
        test_auroc DOUBLE,          -- macro one-vs-rest
        confusion JSON,             -- test confusion matrix, rows = true class, columns = predicted
        hparams JSON,
        history JSON,
        precision VARCHAR,          -- fp32 / bf16: training and test predictions (NULL before version 5)
        pretraining VARCHAR,        -- before fine-tuning: none / supervised / dino / mae / hub:<tag> / ... (v6)
        fine_tuning VARCHAR         -- trained (fine-tuned here) / untrained (random-weights baseline) (v6)""",
    "methods": """
        method VARCHAR PRIMARY KEY,
        version INTEGER,
        needs_grads BOOLEAN,
        reference VARCHAR,
        baseline VARCHAR            -- reference input of the attribution ('zero' = normalised zeros), else NULL""",
    "metrics": """
        metric VARCHAR PRIMARY KEY,
        version INTEGER,
        kind VARCHAR,
        higher_is_better BOOLEAN,
        reference VARCHAR""",
    "predictions": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        image_id VARCHAR,
        label INTEGER,
        pred INTEGER,
        confidence DOUBLE,          -- softmax probability of pred
        probs FLOAT[],
        precision VARCHAR           -- fp32 / bf16 of the forward pass""",
    "explanations": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,      -- canonical JSON
        image_id VARCHAR,
        target INTEGER,             -- explained class
        grid_h INTEGER,
        grid_w INTEGER,
        map FLOAT[],                -- row-major (grid_h * grid_w) raw values
        precision VARCHAR           -- fp32 / bf16 the map was computed at""",
    "scores": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        metric VARCHAR,
        metric_version INTEGER,
        metric_params VARCHAR,
        region VARCHAR,             -- box / mask / box_from_mask / ... ; 'none' for faithfulness
        image_id VARCHAR,
        value DOUBLE,               -- NULL where undefined (e.g. empty region)
        precision VARCHAR           -- fp32 / bf16: of the map (localisation) or of the forwards (faithfulness)""",
    "curves": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        metric VARCHAR,             -- insertion_auc / deletion_auc
        metric_version INTEGER,
        metric_params VARCHAR,
        image_id VARCHAR,
        x FLOAT[],                  -- fraction of pixels switched
        y FLOAT[],                  -- softmax probability of the explained class
        precision VARCHAR           -- fp32 / bf16 of the forwards""",
    "sanity": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        step INTEGER,               -- 1 = head randomised, then each block top-down, last = embeddings
        layer VARCHAR,              -- the group randomised at this step (cumulative)
        image_id VARCHAR,
        spearman DOUBLE,            -- rank correlation with the original map (NULL for a constant map)
        ssim DOUBLE,
        precision VARCHAR           -- fp32 / bf16 of the explanation passes""",
    "summary": """
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        metric VARCHAR,
        metric_version INTEGER,
        metric_params VARCHAR,
        region VARCHAR,
        n INTEGER,                  -- images with a defined score
        n_undefined INTEGER,
        mean DOUBLE,
        ci_low DOUBLE,              -- 95 % BCa bootstrap interval of the mean (seeded)
        ci_high DOUBLE,
        n_degenerate INTEGER,       -- all-zero / constant / non-finite maps: not scored, counted here
        substrate VARCHAR,          -- faithfulness: 'zero' / 'blur' (what pixels are switched to / from)
        gap_random DOUBLE,          -- mean paired difference to the random map (NULL without it)
        p_random DOUBLE,            -- its Holm-adjusted Wilcoxon p (the pairwise family)
        gap_centre DOUBLE,          -- the same against the centre map
        p_centre DOUBLE,
        n_common INTEGER,           -- shared images: every ranked method of this (model, metric, region) scored
        mean_common DOUBLE          -- this method's mean over them: what the rank and the bold mark use""",
    "pairwise": """
        dataset_id VARCHAR,
        model_id VARCHAR,
        metric VARCHAR,
        metric_version INTEGER,
        metric_params VARCHAR,
        region VARCHAR,
        method_a VARCHAR,           -- method name, or name + canonical params when not default
        method_b VARCHAR,
        n INTEGER,                  -- images scored by both
        mean_diff DOUBLE,           -- mean(a - b)
        p_value DOUBLE,             -- Wilcoxon signed-rank, two-sided
        p_holm DOUBLE               -- Holm-adjusted over all pairs of this (model, metric, region)""",
    "model_quality": """
        dataset_id VARCHAR,
        model_id VARCHAR,
        n INTEGER,                  -- test images predicted
        n_classes INTEGER,          -- classes present among their labels
        accuracy DOUBLE,
        accuracy_ci_low DOUBLE,     -- 95 % percentile bootstrap over images (seeded)
        accuracy_ci_high DOUBLE,
        balanced_accuracy DOUBLE,
        balanced_accuracy_ci_low DOUBLE,
        balanced_accuracy_ci_high DOUBLE,
        chance_majority DOUBLE,     -- accuracy of always predicting the majority class
        chance_uniform DOUBLE,      -- 1 / n_classes: balanced accuracy of any image-blind classifier
        twin_model_id VARCHAR,      -- its random-weights twin (same dataset and architecture), if any
        twin_diff DOUBLE,           -- balanced accuracy minus the twin's, same images
        twin_diff_ci_low DOUBLE,    -- paired percentile bootstrap
        twin_diff_ci_high DOUBLE,
        near_chance BOOLEAN         -- balanced-accuracy CI reaches chance (1 / n_classes)""",
    "degenerate_maps": """
        run_id VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        image_id VARCHAR,
        kind VARCHAR                -- zero / constant / nonfinite""",
    "region_stats": """
        dataset_id VARCHAR,
        region VARCHAR,
        image_id VARCHAR,
        area DOUBLE,                -- fraction of the (model-input) image the region covers
        covers_centre BOOLEAN       -- the region holds a pixel touching the image centre""",
    "trials": """
        dataset_id VARCHAR,
        model_name VARCHAR,         -- zoo / timm name
        strategy VARCHAR,
        search_key VARCHAR,         -- content key of the whole grid search (dataset, model, grid, seed)
        trial INTEGER,
        params JSON,                -- the trial's hyper-parameters (lr, weight_decay, epochs, ...)
        best_epoch INTEGER,
        val_loss DOUBLE,
        val_accuracy DOUBLE,
        val_balanced_accuracy DOUBLE,
        selected BOOLEAN,           -- the configuration kept
        seconds DOUBLE,
        history JSON,               -- per-epoch curves
        run_id VARCHAR""",
    "jobs": """
        job_key VARCHAR PRIMARY KEY,  -- content key: dataset fingerprint, checkpoint hash, rule + params
        run_id VARCHAR,             -- the run that finished it
        experiment VARCHAR,
        kind VARCHAR,               -- train / evaluate / sanity
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        method_version INTEGER,
        method_params VARCHAR,
        metrics JSON,               -- {metric: {version, params}} scored by this job
        status VARCHAR,             -- done / failed
        n_items INTEGER,
        n_failed INTEGER,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        seconds DOUBLE""",
    "failures": """
        run_id VARCHAR,
        job_key VARCHAR,
        dataset_id VARCHAR,
        model_id VARCHAR,
        method VARCHAR,
        item VARCHAR,               -- image id, or '*' for the whole job
        stage VARCHAR,              -- load / explain / score / train / ...
        reason VARCHAR,
        failed_at TIMESTAMP""",
}

# rows identifying one result; re-writing a key replaces the old rows instead of duplicating them
REPLACE_KEYS: dict[str, tuple[str, ...]] = {
    "images": ("dataset_id", "image_id"),
    "predictions": ("dataset_id", "model_id", "image_id"),
    "explanations": ("dataset_id", "model_id", "method", "method_version", "method_params", "image_id"),
    "scores": ("dataset_id", "model_id", "method", "method_version", "method_params", "metric",
               "metric_version", "metric_params", "region", "image_id"),
    "curves": ("dataset_id", "model_id", "method", "method_version", "method_params", "metric",
               "metric_version", "metric_params", "image_id"),
    "sanity": ("dataset_id", "model_id", "method", "method_version", "method_params", "step", "image_id"),
    "summary": ("dataset_id", "model_id", "method", "method_version", "method_params", "metric",
                "metric_version", "metric_params", "region"),
    "trials": ("search_key", "trial"),
    "model_quality": ("dataset_id", "model_id"),
    "degenerate_maps": ("dataset_id", "model_id", "method", "method_version", "method_params", "image_id"),
    "region_stats": ("dataset_id", "region", "image_id"),
    "failures": ("job_key", "item", "stage", "method"),
    "pairwise": ("dataset_id", "model_id", "metric", "metric_version", "metric_params", "region", "method_a",
                 "method_b"),
}


# every other table but ``meta`` (bookkeeping and summaries: runs, jobs, models, summary, pairwise, ...) is also
# published as Parquet files behind a view since version 7, so the catalog file holds only ``meta`` and views; the
# writer keeps these tables whole in memory and writes, per publish, only the rows that changed (writer.py)
HELD: tuple[str, ...] = tuple(t for t in TABLES if t not in SHARDED and t != "meta")
PARQUET: tuple[str, ...] = SHARDED + HELD


def primary_key(table: str) -> str | None:
    for line in TABLES[table].splitlines():
        if "PRIMARY KEY" in line.split("--")[0]:
            return line.split()[0]
    return None


def row_key(table: str) -> tuple[str, ...]:
    """The columns that identify a row of ``table``: its replace key, else its primary key, else every column."""
    if table in REPLACE_KEYS:
        return REPLACE_KEYS[table]
    pk = primary_key(table)
    return (pk,) if pk else tuple(c for c, _ in columns(table))


def columns(table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of ``table`` as declared above."""
    out = []
    for line in TABLES[table].splitlines():
        line = line.split("--")[0].strip().rstrip(",")
        if line:
            name, typ = line.split(None, 1)
            out.append((name, typ.replace(" PRIMARY KEY", "")))
    return out


def create_schema(con, skip: tuple[str, ...] = ()) -> None:
    """Create missing tables (but those in ``skip``), and add columns that a database from an older
    version lacks (the migration is additive: old rows get NULL in new columns)."""
    for name, cols in TABLES.items():
        if name in skip:
            continue
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols}\n)")
        have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = ?", [name]).fetchall()}
        for col, typ in columns(name):
            if col not in have:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {col} {typ}")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
