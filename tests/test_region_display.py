"""The dashboard's region helpers: the dataset's own region list, default and paired regions, and the
outline of every region in its own colour (hand-computed on tiny inputs)."""
from __future__ import annotations

import json

import numpy as np
import torch

from engine.dashboard.regions import DatasetRegions, default_region, ordered_regions, region_pairs, stored_regions
from engine.dashboard.viz import legend, region_colours, render_sample
from engine.data import DatasetSpec, Sample


def _spec_json(**kw) -> dict:
    """A datasets row written before the region columns: only its spec."""
    return {"spec": json.dumps(DatasetSpec(name="d", root="/r", labels="l.csv", **kw).to_dict())}


def test_stored_regions_read_the_columns_first():
    row = {"regions": np.array(["lesion", "box_from_mask", "tumour_box"], dtype=object),
           "mask_regions": np.array(["lesion"], dtype=object), "box_regions": ["tumour_box"],
           "box_from_mask": "lesion", **_spec_json(boxes_template="b/{id}.xml")}  # the columns win over the spec
    assert stored_regions(row) == DatasetRegions(("lesion", "box_from_mask", "tumour_box"), ("lesion",),
                                                 ("tumour_box",), "lesion")
    assert stored_regions(row | {"box_from_mask": float("nan"), "box_regions": None}) == DatasetRegions(
        ("lesion", "box_from_mask", "tumour_box"), ("lesion",), (), None)
    assert stored_regions(row | {"regions": None}).all == ("box",)  # NULL columns: the spec, once
    assert stored_regions(None) == DatasetRegions() and stored_regions({}) == DatasetRegions()


def test_spec_fallback_any_names():
    r = stored_regions(_spec_json(mask_template="m/{id}.png", mask_regions={"nucleus": [255], "cell": [128, 255]},
                                box_from_mask="nucleus", boxes_template="b/{id}.xml"))
    assert r == DatasetRegions(("nucleus", "cell", "box_from_mask", "box"), ("nucleus", "cell"), ("box",), "nucleus")
    r = stored_regions(_spec_json(boxes_format="yolo", boxes_template="l/{stem}.txt",
                                box_regions={"wbc": ["WBC"], "platelets": ["Platelets"]}))
    assert r.all == ("wbc", "platelets") and r.masks == () and r.boxes == ("wbc", "platelets")
    assert stored_regions({"spec": "not json"}) == DatasetRegions()
    assert stored_regions({"spec": '{"bogus": 1}', "regions": None}) == DatasetRegions()


def test_default_region_and_pairs():
    r = DatasetRegions(("lesion", "cell", "box_from_mask", "wbc"), ("lesion", "cell"), ("wbc",), "lesion")
    assert default_region(["box_from_mask", "cell", "lesion"], r) == "lesion"  # first mask region, not sorted
    assert default_region(["box_from_mask", "cell"], r) == "cell"
    assert default_region(["wbc", "box_from_mask"], r) == "box_from_mask"  # no mask region scored: list order
    assert default_region(["other"], r) == "other" and default_region([], r) is None
    assert ordered_regions(["wbc", "zeta", "lesion", "alpha"], r) == ["lesion", "wbc", "alpha", "zeta"]
    assert region_pairs(["lesion", "cell", "box_from_mask", "wbc"], r) == [
        ("lesion", "box_from_mask"), ("lesion", "wbc"), ("cell", "wbc")]
    assert region_pairs(["lesion", "cell"], r) == []  # nothing to pair with


def test_outline_of_every_region_in_its_colour():
    a = torch.zeros(4, 4, dtype=torch.bool)
    a[1:3, 1:3] = True  # a 2x2 block: all four pixels are boundary pixels
    b = torch.zeros(4, 4, dtype=torch.bool)
    b[0, 0] = True
    s = Sample(torch.zeros(3, 4, 4), 0, "x", {"cell": a, "nucleus": b})
    img = render_sample(s, None, scale=1, regions=("nucleus", "cell"))  # the dataset's order sets the colours
    cols = region_colours(("nucleus", "cell"))
    assert cols["nucleus"][0] == "cyan" and cols["cell"][0] == "lime"
    cyan, lime = (0, 255, 255), (round(0.3 * 255), 255, round(0.2 * 255))
    assert tuple(img[0, 0]) == cyan
    assert all(tuple(img[y, x]) == lime for y in (1, 2) for x in (1, 2))
    assert img[3, 3].tolist() == [0, 0, 0]  # background stays the (black) image
    assert legend(("nucleus", "cell")) == "outline: cyan = nucleus, lime = cell"
    assert legend(()) == "outline: none (no regions)"


def test_region_colours_distinct_and_stable():
    names = [f"r{k}" for k in range(8)]
    cols = region_colours(names)
    assert len({c for c, _ in cols.values()}) == 8
    assert region_colours(names[:3]) == {n: cols[n] for n in names[:3]}  # same position, same colour
    assert np.array_equal(region_colours(["a"] * 3)["a"][1], cols["r0"][1])
