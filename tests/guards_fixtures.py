"""A results database with every guard in it, built on ``fixture_db`` (conftest registers the fixture).

* the first fixture model (random weights) gets the random and centre baseline maps, a centre map with
  ``sigma = 1e6`` (constant in float32: a real degenerate map) and Integrated Gradients (zero baseline)
  scored with deletion on the zero and the blurred substrate -- all explained and scored for real;
* ``oracle``: a synthetic model row whose predictions equal the labels (so its quality is not near chance)
  and whose scores are a copy of the first model's, so it appears on the leaderboard without the flag;
* ``shuffled``: the generated near-chance case, a demo ViT fine-tuned on permuted training labels
  (:func:`train_on_shuffled_labels`), predicted, explained (attention) and scored for real.
"""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from conftest import fixture_model, unit_predictions


def train_on_shuffled_labels(spec, epochs: int = 2):
    """A demo ViT fine-tuned on the training split with its labels permuted (seeded): (model, info, records,
    classes).  It can learn nothing about the images, so its test balanced accuracy sits at chance."""
    from engine.data import ImageDataset, load_records
    from engine.models import create_model
    from engine.models.train import TrainConfig, fine_tune
    records, classes = load_records(spec)
    train = [r for r in records if r.split == "train"]
    shuffled = np.random.default_rng(0).permutation([r.label for r in train])
    train = [dataclasses.replace(r, label=int(y)) for r, y in zip(train, shuffled)]
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    fine_tune(model, info, ImageDataset(spec, "train", records=train, classes=classes),
              ImageDataset(spec, "val", records=records, classes=classes),
              TrainConfig(epochs=epochs, batch_size=8, warmup_epochs=0), progress=False)
    return model.eval(), info, records, classes


@pytest.fixture(scope="session")
def guards_db(tmp_path_factory, fixture_db, smear_spec):
    from engine.data import ImageDataset, load_records
    from engine.models import save_checkpoint
    from engine.runner.evaluate import evaluate_model
    from engine.runner.ingest import refresh_quality, refresh_summaries
    from engine.store import ResultWriter
    from engine.store.schema import columns

    db = tmp_path_factory.mktemp("guards") / "guards.duckdb"
    shutil.copyfile(fixture_db, db)
    records, classes = load_records(smear_spec)
    test_ds = ImageDataset(smear_spec, "test", records=records, classes=classes)
    with ResultWriter(db) as w:
        run_id, dataset_id = w.con.execute("SELECT run_id, dataset_id FROM predictions LIMIT 1").fetchall()[0]
        first = w.con.execute("SELECT model_id FROM models ORDER BY init LIMIT 1").fetchall()[0][0]
        model, info = fixture_model(w, first)
        methods = [("baseline_random", {}), ("baseline_centre", {}), ("baseline_centre", {"sigma": 1e6}),
                   ("integrated_gradients", {"n_steps": 2})]
        res = evaluate_model(model, info, test_ds, run_id=run_id, dataset_id=dataset_id, model_id=first,
                             methods=methods, metrics={"pointing_game": {}, "iou_top5": {},
                                                       "deletion_auc": {"n_steps": 4}}, progress=False)
        for table, df in (("explanations", res.explanations), ("scores", res.scores), ("curves", res.curves),
                          ("degenerate_maps", res.degenerate), ("region_stats", res.region_stats)):
            w.replace_rows(table, df)
        blur = evaluate_model(model, info, test_ds, run_id=run_id, dataset_id=dataset_id, model_id=first,
                              methods=[("integrated_gradients", {"n_steps": 2}), ("attention", {})],
                              metrics={"deletion_auc": {"n_steps": 4, "substrate": "blur"}}, progress=False)
        w.replace_rows("scores", blur.scores)
        refresh_summaries(w, dataset_id, first)
        # the oracle: synthetic rows, labelled as such in its name
        w.con.execute("INSERT INTO models (model_id, dataset_id, name, init, arch, strategy, test_accuracy) "
                      "VALUES ('oracle', ?, 'vit_demo', 'trained', 'vit', 'synthetic', 1.0)", [dataset_id])
        def rows(table):
            return w.rows_of(table, dataset_id, [c for c, _ in columns(table)], first).assign(model_id="oracle")
        preds = rows("predictions")
        w.replace_rows("predictions", preds.assign(pred=preds.label, confidence=1.0))
        w.replace_rows("scores", rows("scores"))
        w.replace_rows("degenerate_maps", rows("degenerate_maps"))
        refresh_summaries(w, dataset_id, "oracle")
        # the generated near-chance case
        model, info, _, _ = train_on_shuffled_labels(smear_spec)
        ckpt = db.parent / "shuffled.safetensors"
        sha = save_checkpoint(ckpt, model, info, {"init": "trained"})
        w.con.execute("INSERT INTO models (model_id, dataset_id, name, init, arch, strategy) "
                      "VALUES ('shuffled', ?, 'vit_demo', 'trained', 'vit', 'shuffled labels')", [dataset_id])
        res = evaluate_model(model, info, test_ds, run_id=run_id, dataset_id=dataset_id, model_id="shuffled",
                             methods=[("attention", {}), ("baseline_random", {}), ("baseline_centre", {})],
                             metrics={"pointing_game": {}, "iou_top5": {}}, progress=False)
        preds = unit_predictions(smear_spec, ckpt, sha, run_id=run_id, dataset_id=dataset_id, model_id="shuffled")
        for table, df in (("predictions", preds), ("explanations", res.explanations), ("scores", res.scores)):
            w.replace_rows(table, df)
        refresh_summaries(w, dataset_id, "shuffled")
        refresh_quality(w, dataset_id)
    return db
