"""The runner's typed pieces: unit results survive pickling (Ray ships them), the identities have one
formula each, the writer's operations the runner uses, the metric kinds and MPRT's own entry."""
from __future__ import annotations

import datetime as dt
import pickle

import duckdb
import pandas as pd
import pytest

from engine.common.verdicts import SURVIVES
from engine.metrics import METRICS, register_metric
from engine.metrics.sanity import MPRT
from engine.models import ModelInfo, create_model
from engine.runner.experiment import ModelEntry, parse_experiment
from engine.runner.jobs import checkpoint_path, train_key
from engine.runner.results import ChunkResult, Failure, PredictResult, SanityResult, TrainMeta, TrainResult, first_line
from engine.store import ResultWriter, identity, utc_now


def test_identities_hand_computed():
    assert identity.dataset_id("wbc", "0123456789abcdef") == "wbc@0123456789"
    assert identity.model_id("vit_demo", "trained", "f" * 64) == "vit_demo:trained@ffffffffffff"
    assert identity.model_id("vit_demo", "dino-ft", "a" * 64, label="mine") == "mine@aaaaaaaaaaaa"
    now = utc_now()
    assert now.tzinfo is None and abs(now - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)).total_seconds() < 5


def test_unit_results_round_trip_through_pickle():
    _, info = create_model("vit_demo", 3, pretrained=False)
    df = pd.DataFrame({"image_id": ["a"], "value": [0.5]})
    fail = Failure("a", "score", "ValueError: bad", "attention")
    results = [
        TrainResult("/c.safetensors", "ab" * 32, info,
                    TrainMeta("trained", "supervised", {"lr": 1e-3}, {"val_accuracy": 0.9}, [{"epoch": 1}]),
                    [{"trial": 0}], [fail], 1.5),
        PredictResult(df, {"accuracy": 1.0}, [fail]), ChunkResult(df, df, df, [fail], 1), SanityResult(df, [fail])]
    for r in results:
        back = pickle.loads(pickle.dumps(r))
        assert type(back) is type(r) and back.failures == [fail]
    back = pickle.loads(pickle.dumps(results[0]))
    assert back.info == info and back.meta == results[0].meta and isinstance(back.info, ModelInfo)


def test_train_meta_from_a_sidecar_and_back():
    side = {"init": "random", "strategy": "random", "hparams": None, "metrics": {}, "model": {}, "sha256": "x"}
    meta = TrainMeta.from_sidecar(side)
    assert meta == TrainMeta("random", "random", {}, {}, [])
    assert set(meta.to_dict()) == {"init", "strategy", "hparams", "metrics", "history"}


def test_first_line():
    assert first_line(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    assert first_line(RuntimeError()) == "RuntimeError: "
    assert len(first_line(ValueError("x" * 1000))) == 300


def test_model_entries_are_validated_objects_with_resolved_paths(tmp_path):
    exp = parse_experiment({"name": "e", "datasets": [{"name": "d", "generate": "blood_smear"}],
                            "models": [{"name": "vit_demo", "weights": "w/x.safetensors", "label": "m"},
                                       {"name": "vit_demo", "init": "random"}],
                            "methods": {"attention": {}}, "metrics": {"pointing_game": {}}}, base_dir=tmp_path)
    a, b = exp.model_entries()
    assert isinstance(a, ModelEntry) and a.weights == str((tmp_path / "w/x.safetensors").resolve())
    assert exp.models[0].weights == "w/x.safetensors"  # the parsed experiment stays as written
    assert (a.key, b.key) == ("m", "vit_demo:random")
    # the train key ignores the display label and the methods; the checkpoint file is named by name and init
    assert train_key("fp", a, 0) == train_key("fp", a.model_copy(update={"label": "other", "methods": ["x"]}), 0)
    assert train_key("fp", a, 0) != train_key("fp", a, 1)
    assert checkpoint_path(tmp_path, b, "k").name == "vit_demo-random-k.safetensors"


def test_writer_operations_the_runner_uses(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("runs", {"run_id": "r1", "kind": "run", "status": "running", "started_at": utc_now()})
        for key, status in (("a", "done"), ("b", "failed"), ("c", "done")):
            w.upsert("jobs", {"job_key": key, "run_id": "r1", "kind": "train", "status": status})
        w.replace_rows("failures", pd.DataFrame([
            {"run_id": "r1", "job_key": k, "dataset_id": None, "model_id": None, "method": None, "item": i,
             "stage": "load", "reason": "bad", "failed_at": utc_now()}
            for k, i in (("b", "x"), ("b", "y"), ("c", "z"))]))
        assert w.done_job_keys() == {"a", "c"}
        w.clear_failures("b")
        w.finish_run("r1", "finished", {"done": 2})
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT job_key FROM failures").fetchall() == [("c",)]
        status, finished, counts = con.execute("SELECT status, finished_at, counts FROM runs").fetchone()
    assert status == "finished" and finished is not None and '"done": 2' in str(counts)


def test_metric_kinds_are_checked_and_mprt_is_not_a_metric():
    assert {m.kind for m in METRICS.values()} == {"localisation", "faithfulness", "class_sensitivity"}
    assert "mprt" not in METRICS and MPRT.name == "mprt" and MPRT.kind == "sanity"
    with pytest.raises(ValueError, match="kind 'sanity'; allowed"):
        register_metric("not_a_metric", version=1, kind="sanity")
    assert "not_a_metric" not in METRICS
    assert 0 < SURVIVES < 1


def test_mprt_in_metrics_is_sent_to_sanity():
    from engine.runner.experiment import ExperimentError
    with pytest.raises(ExperimentError, match=r"is a sanity check: configure it under \[sanity\]"):
        parse_experiment({"name": "e", "datasets": [{"name": "d", "generate": "blood_smear"}],
                          "models": [{"name": "vit_demo"}], "methods": {"attention": {}}, "metrics": {"mprt": {}}})


def test_the_dashboards_survival_flag_uses_the_sanity_threshold(fixture_db, monkeypatch):
    from engine.dashboard import queries
    df = queries.sanity_summary(fixture_db)
    # the fixture scores 2 images: fewer than MIN_IMAGES with a value, so no flag and no verdict (issue 23)
    assert len(df) and df.survives_randomisation.isna().all() and (df.images <= 2).all()
    assert df.verdict.str.startswith("no verdict").all()
    monkeypatch.setattr(queries, "MIN_IMAGES", 1)   # the query binds the constants
    df = queries.sanity_summary(fixture_db)
    assert (df.survives_randomisation == (df.mean_spearman > SURVIVES)).all()
    monkeypatch.setattr(queries, "SURVIVES", -1.0)  # a lower bar flags every method
    assert queries.sanity_summary(fixture_db).survives_randomisation.all()
