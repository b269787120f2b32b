"""LD31x: configuration facts that are faults on their own, whatever the curve looks like.

Each rule reads run facts only (frozen weights, BatchNorm flags, the input normalisation) and
quotes the line that states them. Healthy practice gives no finding: a frozen backbone or frozen
BatchNorm *with* loaded weights is fine-tuning (mmdet's `frozen_stages=1, norm_eval=True` beside
`pretrained=`), and detectron2/Caffe-style `std=1` normalisation is what Caffe-trained weights expect.

Every finding carries the measurements a cause rule needs as plain numbers in its evidence
params (counts, means, stds, the size of the normalised input), so cause rules read numbers,
not sentences. Caffe's `use_global_stats` (LD301), `scale` vs `mean_value` (LD302/LD303), batch
1-2 with BatchNorm (LD304) and the loss normalisation vs lr (LD306) stay in `config.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.context import Context
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule
from parsers.model import RunMeta


@dataclass(frozen=True)
class Limits:
    """The numbers these rules judge with (candidates for `Params` once the fit covers them)."""

    byte_units_mean: float = 1.5  # a mean above this is in 0..255 pixel units, else in 0..1 units
    byte_units_std: float = 1.5  # likewise for a std (ImageNet's: 58 in 0..255 units, 0.229 in 0..1)
    unit_std_low: float = 0.95  # std within [low, high] of 1 on 0..255 pixels: centred, not scaled
    unit_std_high: float = 1.05
    wild_input: float = 20.0  # a normalised input this large (in sds of a unit input) is a mismatch


LIMITS = Limits()

# Weights that expect pixels centred but not scaled (Caffe/detectron2 MSRA ResNets, mmdet `style='caffe'`).
_CAFFE_STYLE = re.compile(r"caffe|msra|detectron", re.IGNORECASE)
# Adapters train on top of a pretrained model by construction, whether or not the log says it loaded one.
_ADAPTER = re.compile(r"\b(?:lora|peft|adapter|qlora|prefix_tuning|prompt_tuning)", re.IGNORECASE)


def _one(rule_id: str, severity: str, evidence: list[Evidence]) -> RuleResult:
    return RuleResult([Finding(rule_id, severity, evidence)])  # type: ignore[arg-type]


def weights_loaded(meta: RunMeta) -> bool | None:
    """True: the log shows trained weights loaded (or an adapter, which needs them); False: it shows a
    from-scratch start; None: it does not say."""
    if meta.pretrained or meta.pretrained_from:
        return True
    if any(_ADAPTER.search(key) for key in meta.hyperparams) or _ADAPTER.search(meta.net_name or ""):
        return True
    return meta.pretrained


def _scratch_evidence(meta: RunMeta) -> Evidence:
    """How the log shows (or fails to show) where the weights come from."""
    if meta.pretrained is False:
        return Evidence("evidence.weights_scratch", {}, quote=meta.where.get("pretrained"))
    return Evidence("evidence.weights_unknown", {})


@rule("LD310", "frozen-layers-without-loaded-weights", meta=("frozen_layers",))
def frozen_without_weights(ctx: Context) -> RuleResult | None:
    """Layers that are not trained (Caffe `lr_mult: 0`, `requires_grad=False`, `--freeze-*`,
    `frozen_stages`, "training fc only") in a run that loads no weights: they keep their random
    initialisation for the whole run."""
    meta = ctx.meta
    loaded = weights_loaded(meta)
    if loaded:
        return None
    frozen = meta.frozen_layers
    names = ", ".join(f.name for f in frozen[:3]) + (", ..." if len(frozen) > 3 else "")
    evidence = [
        Evidence(
            "evidence.frozen_layers",
            {"count": len(frozen), "layers": names, "how": frozen[0].how, "loaded": 0},
            quote=frozen[0].where,
        ),
        _scratch_evidence(meta),
    ]
    # Caffe prints every weight load ("Copying source layer"), so its silence means from scratch.
    sure = loaded is False or meta.framework == "caffe"
    return _one("LD310", "critical" if sure else "warning", evidence)


@rule("LD311", "batchnorm-inference-mode-from-scratch", meta=("batchnorm_flags",))
def bn_eval_from_scratch(ctx: Context) -> RuleResult | None:
    """A setting keeps BatchNorm in inference mode while training (`norm_eval=True`, `freeze_bn`,
    detectron2 `NORM: FrozenBN`) in a run that loads no weights: the running statistics are the
    initial 0/1 and never update, so BatchNorm normalises nothing. (Caffe's `use_global_stats:
    true` in TRAIN is LD301.)"""
    meta = ctx.meta
    loaded = weights_loaded(meta)
    if loaded:
        return None
    flags = meta.batchnorm_flags
    evidence = [
        Evidence(
            "evidence.bn_eval_flag",
            {"count": len(flags), "setting": flags[0].name, "loaded": 0},
            quote=flags[0].where,
        ),
        _scratch_evidence(meta),
    ]
    return _one("LD311", "critical" if loaded is False else "warning", evidence)


@rule("LD312", "input-normalization-units-mismatch", meta=("input_norm_mean", "input_norm_std"))
def normalization_units(ctx: Context) -> RuleResult | None:
    """The normalisation's mean and std are in different pixel units, or the std leaves 0..255
    pixels unscaled for weights that expect unit-scale inputs: the net sees inputs tens to
    hundreds of times larger (or smaller) than it was built and tuned for."""
    meta, lim = ctx.meta, LIMITS
    mean, std = meta.input_norm_mean, meta.input_norm_std
    if not std or min(std) <= 0:
        return None
    mean_bytes = max(abs(m) for m in mean) > lim.byte_units_mean
    std_bytes = max(std) > lim.byte_units_std
    unit_std = all(lim.unit_std_low <= s <= lim.unit_std_high for s in std)
    pixel_max = 255.0 if mean_bytes or meta.input_range == "0-255" else 1.0
    if meta.input_range == "0-1":
        pixel_max = 1.0
    # the largest |(pixel - mean) / std| over channels and the pixel range
    amplitude = max(max(abs(0 - m), abs(pixel_max - m)) / s for m, s in zip(mean, std, strict=False))
    params = {
        "mean": _numbers(mean),
        "std": _numbers(std),
        "mean_max": round(max(abs(m) for m in mean), 4),
        "std_min": round(min(std), 4),
        "std_max": round(max(std), 4),
        "pixel_max": pixel_max,
        "input_max": round(amplitude, 1),
    }
    if mean_bytes and meta.input_range == "0-1":
        key, severity = "evidence.norm_byte_stats_unit_pixels", "critical"
    elif mean_bytes and unit_std:
        # Centred, not scaled: what Caffe/detectron2-style weights expect; wrong for weights (or a
        # default init) that expect unit-scale inputs.
        caffe_style = _CAFFE_STYLE.search(meta.pretrained_from or "") or any(
            key.endswith("style") and "caffe" in value.lower() for key, value in meta.hyperparams.items()
        )
        torchvision = "torchvision" in (meta.pretrained_from or "").lower()
        if caffe_style or (weights_loaded(meta) and not torchvision):
            return None
        key, severity = "evidence.norm_unscaled", "warning"
    elif mean_bytes and not std_bytes:
        key, severity = "evidence.norm_std_unit_range", "critical"
    elif not mean_bytes and std_bytes and params["mean_max"] > 0.05:
        key, severity = "evidence.norm_mean_unit_range", "warning"
    elif not std_bytes and meta.input_range == "0-255" and amplitude > lim.wild_input:
        key, severity = "evidence.norm_unit_stats_byte_pixels", "critical"
    else:
        return None
    quote = meta.where.get("input_norm_std") or meta.where.get("input_norm_mean")
    evidence = [Evidence(key, params, quote=quote)]
    if meta.input_range is not None and meta.where.get("input_range") not in (None, quote):
        evidence.append(
            Evidence("evidence.pixel_range", {"range": meta.input_range}, quote=meta.where["input_range"])
        )
    return _one("LD312", severity, evidence)


def _numbers(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)
