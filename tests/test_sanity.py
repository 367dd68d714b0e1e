"""MPRT: the randomisation cascade covers tokens and embeddings; similarity measures; flags."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_vit

from engine.common.verdicts import SURVIVES
from engine.metrics.sanity import mprt, randomisation_groups, spearman, ssim


def test_similarity_measures():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, 3 * a + 2) == pytest.approx(1.0)  # scale-free
    assert ssim(a, a[::-1]) < 0.5
    assert np.isnan(spearman(np.ones(4), a.ravel()[:4]))


def test_groups_top_down_including_tokens():
    model = tiny_vit(depth=2)
    groups = randomisation_groups(model)
    assert [g for g, _ in groups] == ["head", "blocks.1", "blocks.0", "embeddings"]
    emb = groups[-1][1]
    assert any(p is model.cls_token for p in emb) and any(p is model.pos_embed for p in emb)
    assert any(p is model.norm.weight for p in groups[0][1])
    n_params = sum(len(p) for _, p in groups)
    assert n_params == len(list(model.parameters()))  # every parameter is randomised at some step


def test_mprt_rows_deterministic_and_flags_model_independent_maps():
    model = tiny_vit(img=16, patch=4, dim=16, depth=2, seed=4)
    x = torch.randn(3, 3, 16, 16)
    before = model.pos_embed.detach().clone()
    rows = mprt(model, x, {"chefer_gae": {}, "baseline_centre": {}}, seed=1)
    assert torch.equal(model.pos_embed, before)  # works on a copy
    assert len(rows) == 2 * 4 * 3  # methods x steps x images
    assert rows == mprt(model, x, {"chefer_gae": {}, "baseline_centre": {}}, seed=1)
    centre = [r["spearman"] for r in rows if r["method"] == "baseline_centre" and r["layer"] == "embeddings"]
    assert np.mean(centre) > SURVIVES  # a map that ignores the model survives randomisation: flagged
    gae = [r["spearman"] for r in rows if r["method"] == "chefer_gae" and r["layer"] == "embeddings"]
    assert np.nanmean(gae) < 0.99
