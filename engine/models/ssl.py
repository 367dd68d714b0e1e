"""Self-supervised objectives for small-scale offline pretraining: DINO and MAE (own code).

* DINO -- Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin, "Emerging Properties in
  Self-Supervised Vision Transformers", ICCV 2021.  A student network matches the output
  distribution of a teacher (an exponential moving average of the student) across views of one
  image: multi-crop (two global and several local crops; the teacher sees only the global ones),
  the teacher's outputs centred (a running mean) and sharpened (a low temperature) so that
  training neither collapses to one prototype nor to the uniform distribution.  The projection
  head is an MLP, an l2-normalised bottleneck and a weight-normalised prototype layer (gain 1).
* MAE -- He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision
  Learners", CVPR 2022.  A random 75 % of the patches is dropped, the encoder (the ViT being
  pretrained) sees only the visible ones, a light transformer decoder fills in mask tokens and
  predicts the pixels of the masked patches (each patch normalised by its own mean and variance),
  and the loss is the mean squared error on the masked patches only.

``lightly`` has DINO and MAE pieces but pulls pytorch-lightning, hydra-core, omegaconf, aiohttp
and torchmetrics into the environment for ~100 lines of loss and head code, so these are written
here from the papers.  Both work on timm ``VisionTransformer`` models (patch_embed, pos_embed,
cls_token, blocks, norm).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torchvision.ops import roi_align


# --------------------------------------------------------------------------- augmentations
def random_resized_crops(x: torch.Tensor, out: int, scale: tuple[float, float], gen: torch.Generator,
                         ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """One random crop per image (area fraction in ``scale``, aspect in ``ratio``), resized to ``out``."""
    b, _, h, w = x.shape
    area = torch.empty(b).uniform_(*scale, generator=gen)
    logr = torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(logr)
    cw = (torch.sqrt(area * r) * w).clamp(2, w)
    ch = (torch.sqrt(area / r) * h).clamp(2, h)
    x0 = torch.rand(b, generator=gen) * (w - cw)
    y0 = torch.rand(b, generator=gen) * (h - ch)
    boxes = torch.stack([torch.arange(b, dtype=torch.float32), x0, y0, x0 + cw, y0 + ch], 1).to(x)
    return roi_align(x, boxes, output_size=(out, out), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def flips_rot90(x: torch.Tensor, gen: torch.Generator, rot90: bool = True) -> torch.Tensor:
    b = x.shape[0]
    fh = (torch.rand(b, generator=gen) < 0.5).view(-1, 1, 1, 1)
    x = torch.where(fh, x.flip(-1), x)
    if rot90:
        k = torch.randint(0, 4, (b,), generator=gen)
        x = torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])
    return x


def colour_jitter(x: torch.Tensor, gen: torch.Generator, strength: float = 0.4, p_gray: float = 0.2) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors in [1 - s, 1 + s]; random grayscale."""
    b = x.shape[0]

    def fac():
        return (1 + (torch.rand(b, generator=gen) * 2 - 1) * strength).view(-1, 1, 1, 1)

    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = x * fac()
    x = (x - gray.mean((2, 3), keepdim=True)) * fac() + gray.mean((2, 3), keepdim=True)
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - gray) * fac() + gray
    to_gray = (torch.rand(b, generator=gen) < p_gray).view(-1, 1, 1, 1)
    x = torch.where(to_gray, gray.expand_as(x), x)
    return x.clamp(0, 1)


# --------------------------------------------------------------------------- DINO
class DINOHead(nn.Module):
    """MLP -> l2-normalised bottleneck -> prototypes with unit-norm rows (weight norm, gain fixed at 1)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, out_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) * 0.02)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.prototypes, dim=-1).t()


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float, teacher_temp: float) -> torch.Tensor:
    """Cross-entropy between the centred, sharpened teacher of each global view and the student of
    every *other* view (the first ``len(teacher)`` student views are the same global views)."""
    t = [F.softmax((ti - center) / teacher_temp, dim=-1).detach() for ti in teacher]
    s = [F.log_softmax(si / student_temp, dim=-1) for si in student]
    total, n = 0.0, 0
    for i, ti in enumerate(t):
        for j, sj in enumerate(s):
            if i == j:
                continue
            total = total + (-ti * sj).sum(-1).mean()
            n += 1
    return total / n


@torch.no_grad()
def collapse_stats(teacher: torch.Tensor, center: torch.Tensor, teacher_temp: float) -> dict[str, float]:
    """Two collapse diagnostics of the centred, sharpened teacher distributions ``p_i`` over K
    prototypes, both divided by ln K so that they lie in [0, 1]:

    * ``teacher_entropy`` = mean_i H(p_i): 1 is the uniform collapse (centring has won);
    * ``usage_entropy`` = H(mean_i p_i): 0 is the one-prototype collapse (sharpening has won).

    Healthy training keeps the first well below 1 and the second well above 0."""
    p = F.softmax((teacher - center) / teacher_temp, dim=-1)
    log_k = math.log(p.shape[-1])
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
    mean = p.mean(0)
    usage = -(mean * mean.clamp_min(1e-12).log()).sum()
    return {"teacher_entropy": float(ent) / log_k, "usage_entropy": float(usage) / log_k}


class DINO(nn.Module):
    """Student backbone + head, EMA teacher, centre.  ``backbone(x)`` must return pooled features
    (a timm model with ``num_classes=0``) and accept smaller local crops (``dynamic_img_size``)."""

    def __init__(self, backbone: nn.Module, *, hidden: int, bottleneck: int, out_dim: int,
                 student_temp: float, teacher_temp: float, center_momentum: float):
        super().__init__()
        self.student = nn.ModuleDict({"backbone": backbone,
                                      "head": DINOHead(backbone.num_features, hidden, bottleneck, out_dim)})
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.student_temp, self.teacher_temp, self.center_momentum = student_temp, teacher_temp, center_momentum

    def _run(self, net: nn.ModuleDict, views: list[torch.Tensor]) -> list[torch.Tensor]:
        outs, i = [], 0
        while i < len(views):  # one forward per run of same-sized views
            j = i
            while j < len(views) and views[j].shape == views[i].shape:
                j += 1
            z = net["head"](net["backbone"](torch.cat(views[i:j])))
            outs += list(z.chunk(j - i))
            i = j
        return outs

    def forward(self, global_views: list[torch.Tensor], local_views: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            t = self._run(self.teacher, global_views)
        s = self._run(self.student, global_views + local_views)
        loss = dino_loss(s, t, self.center, self.student_temp, self.teacher_temp)
        with torch.no_grad():
            self.stats = collapse_stats(torch.cat(t), self.center, self.teacher_temp)
            batch_center = torch.cat(t).mean(0, keepdim=True)
            self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
        return loss

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        for ps, pt in zip(self.student.parameters(), self.teacher.parameters()):
            pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


# --------------------------------------------------------------------------- MAE
class MAE(nn.Module):
    """Masked autoencoder around a timm ViT encoder with a light transformer decoder."""

    def __init__(self, vit: nn.Module, *, mask_ratio: float, decoder_dim: int, decoder_depth: int,
                 decoder_heads: int, norm_pix: bool = True):
        super().__init__()
        self.vit = vit
        self.mask_ratio, self.norm_pix = mask_ratio, norm_pix
        self.patch = int(vit.patch_embed.patch_size[0])
        self.n_patches = int(vit.patch_embed.num_patches)
        self.dec_embed = nn.Linear(vit.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.dec_pos = nn.Parameter(torch.randn(1, self.n_patches + 1, decoder_dim) * 0.02)
        self.dec_blocks = nn.Sequential(*[Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True)
                                          for _ in range(decoder_depth)])
        self.dec_norm = nn.LayerNorm(decoder_dim)
        self.dec_pred = nn.Linear(decoder_dim, self.patch * self.patch * 3)
        nn.init.normal_(self.mask_token, std=0.02)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def encode(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
        vit = self.vit
        tokens = vit.patch_embed(x)
        npt = 0 if vit.no_embed_class else vit.num_prefix_tokens
        tokens = tokens + vit.pos_embed[:, npt:]
        b, n, _ = tokens.shape
        keep = max(1, int(round(n * (1 - self.mask_ratio))))
        ids_shuffle = torch.argsort(torch.rand(b, n, generator=gen).to(x.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        visible = torch.gather(tokens, 1, ids_shuffle[:, :keep, None].expand(-1, -1, tokens.shape[-1]))
        prefix = vit.cls_token.expand(b, -1, -1)
        if not vit.no_embed_class:
            prefix = prefix + vit.pos_embed[:, :1]
        z = vit.norm_pre(torch.cat([prefix, visible], 1))
        z = vit.norm(vit.blocks(z))
        return z, ids_restore, keep

    def forward(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        z, ids_restore, keep = self.encode(x, gen)
        b, n = ids_restore.shape
        y = self.dec_embed(z)
        patches = torch.cat([y[:, 1:], self.mask_token.expand(b, n - keep, -1)], 1)
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, y.shape[-1]))
        y = torch.cat([y[:, :1], patches], 1) + self.dec_pos
        pred = self.dec_pred(self.dec_norm(self.dec_blocks(y)))[:, 1:]
        target = self.patchify(x)
        if self.norm_pix:
            mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mu) / (var + 1e-6).sqrt()
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        per_patch = ((pred - target) ** 2).mean(-1)
        return (per_patch * mask).sum() / mask.sum()
