"""The README's Python API example, complete: ``python docs/examples/api.py`` from the repository root
(tests/test_examples.py runs it).  A demo-sized ViT with seeded random weights and two random images
stand in for your fine-tuned model and data; everything else is as in the README."""
import torch

from engine.models import create_model, normalise

torch.manual_seed(0)
model, info = create_model("vit_demo", num_classes=4)              # 64 px input, 8 px patches
raw = torch.rand(2, 3, 64, 64)                                      # two [0, 1] RGB images
images = normalise(raw, info)                                       # the model's input
regions = torch.zeros(2, 64, 64, dtype=torch.bool)                  # the expert region of each image
regions[:, 16:40, 20:44] = True
preds = model.eval()(images).argmax(1)

# --- as in the README ---
from engine.explain import explain, upsample_maps, METHODS
maps = explain(model.eval(), images, ["attention", "chefer_lrp"])   # {name: (B, gh, gw) float32, raw values}
up = upsample_maps(maps["chefer_lrp"], images.shape[-2:])           # the helper metrics and dashboard share
from engine.metrics import METRICS
hits = METRICS["pointing_game"](up, regions)                        # (B,) float64, NaN = not scored
ins = METRICS["insertion_auc"](up, model=model, images=images, targets=preds)
# ---

print(f"{len(METHODS)} methods registered; chefer_lrp map {tuple(maps['chefer_lrp'].shape)} -> {tuple(up.shape)}")
print(f"pointing game {hits.tolist()}, insertion AUC {[round(float(v), 3) for v in ins]}")
