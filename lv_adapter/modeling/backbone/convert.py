"""Torchvision-layout ResNet checkpoints (as self-supervised methods release them) -> weights
of detectron2's ResNet, under the model's ``backbone.bottom_up.`` keys.

MoCo v1/v2, SimCLR, SwAV, BYOL, DetCo and DenseCL all train a torchvision ResNet and save it
inside something else: a ``state_dict`` / ``model`` wrapper, a ``module.`` prefix from
DataParallel, an ``encoder_q.`` / ``backbone.`` prefix from the method, next to a momentum
encoder, projection heads and optimizer state. The encoder is found by its layout (a
``conv1.weight`` with a ``layer1.0.conv1.weight`` beside it), not by a list of known prefixes.
"""
import os
import pickle
import re
from collections import Counter
from typing import NamedTuple

import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone.resnet import build_resnet_backbone

__all__ = ["ResNetConversion", "convert_torchvision_resnet", "load_checkpoint", "TARGET_PREFIX"]

# Where detectron2 models keep the ResNet.
TARGET_PREFIX = "backbone.bottom_up."
# Encoders that only exist to teach the online one (MoCo's key encoder, BYOL's target, EMAs),
# recognised by a component of their prefix.
_AUXILIARY_ENCODER = re.compile(r"^(encoder_k|ema|(momentum|target|teacher)\w*|\w*_ema)$")
_NORM = r"(weight|bias|running_mean|running_var)"
# torchvision name (relative to the encoder) -> detectron2 name.
_RULES = [
    (re.compile(r"^conv1\.weight$"), r"stem.conv1.weight"),
    (re.compile(rf"^bn1\.{_NORM}$"), r"stem.conv1.norm.\1"),
    (re.compile(r"^layer(\d)\.(\d+)\.conv(\d)\.weight$"), r"res{stage}.\2.conv\3.weight"),
    (re.compile(rf"^layer(\d)\.(\d+)\.bn(\d)\.{_NORM}$"), r"res{stage}.\2.conv\3.norm.\4"),
    (re.compile(r"^layer(\d)\.(\d+)\.downsample\.0\.weight$"), r"res{stage}.\2.shortcut.weight"),
    (re.compile(rf"^layer(\d)\.(\d+)\.downsample\.1\.{_NORM}$"), r"res{stage}.\2.shortcut.norm.\3"),
]
# (blocks per stage, bottleneck blocks) -> depth
_DEPTHS = {
    ((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152,
}


class ResNetConversion(NamedTuple):
    weights: dict  # "backbone.bottom_up.<detectron2 name>" -> tensor
    encoder_prefix: str  # where the encoder was found in the checkpoint, e.g. "state_dict.module."
    depth: int
    unused: list  # checkpoint entries not converted, grouped: "module.encoder_k.* (320 tensors)"


def load_checkpoint(path, trust_pickle=False):
    """``torch.load`` a checkpoint on the CPU; arbitrary pickled objects only if trusted."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive ("PK"); older releases a pickle (protocol byte 0x80)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        raise ValueError(f"{path} is not a PyTorch checkpoint (it begins with {head!r}, not a zip "
                         "archive or a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:  # what weights_only raises for other objects
        if trust_pickle:
            raise ValueError(f"{path} cannot be unpickled ({e}): a damaged checkpoint?") from e
        raise ValueError(
            f"{path} holds objects other than tensors and plain containers ({e}); if you trust "
            "the file, load it with trust_pickle=True (tools/convert_pretrained.py --trust-pickle)"
        ) from e
    except (RuntimeError, EOFError) as e:  # the zip reader's errors name no file
        raise ValueError(f"{path} is not a complete PyTorch checkpoint (truncated or damaged: "
                         f"{e})") from e


def _flatten(tree, prefix=""):
    """Nested dicts -> {"a.b.c": tensor}; and the names of the non-tensor leaves."""
    tensors, others = {}, []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            sub_tensors, sub_others = _flatten(value, name + ".")
            tensors.update(sub_tensors)
            others += sub_others
        elif isinstance(value, torch.Tensor):
            tensors[name] = value
        else:
            others.append(name)
    return tensors, others


def _find_encoder(tensors, prefix, source):
    candidates = sorted(
        k[: -len("conv1.weight")] for k in tensors
        if k.endswith("conv1.weight") and k[: -len("conv1.weight")] + "layer1.0.conv1.weight"
        in tensors
    )
    if prefix is not None:
        if prefix not in candidates:
            raise ValueError(f"{source}: no ResNet under prefix {prefix!r}; found {candidates}")
        return prefix
    online = [c for c in candidates
              if not any(_AUXILIARY_ENCODER.match(part) for part in c.split("."))]
    if len(online) == 1:
        return online[0]
    if not candidates:
        raise ValueError(
            f"{source}: no torchvision-layout ResNet in it (looked for 'conv1.weight' beside "
            f"'layer1.0.conv1.weight' under any prefix); its first keys: {list(tensors)[:8]}"
        )
    raise ValueError(f"{source}: several ResNets {candidates}; choose one with prefix=")


def _depth(names, source):
    blocks = tuple(
        1 + max((int(m.group(1)) for n in names if (m := re.match(rf"layer{s}\.(\d+)\.", n))),
                default=-1)
        for s in (1, 2, 3, 4)
    )
    bottleneck = "layer1.0.conv3.weight" in names
    if (blocks, bottleneck) not in _DEPTHS:
        raise ValueError(f"{source}: a ResNet with {blocks} blocks per stage is no known depth")
    return _DEPTHS[(blocks, bottleneck)]


def _detectron2_name(name):
    for pattern, template in _RULES:
        match = pattern.match(name)
        if match:
            stage = int(match.group(1)) + 1 if name.startswith("layer") else 0
            return match.expand(template.replace("{stage}", str(stage)))
    return None


def _reference_shapes(depth):
    """Names and shapes of detectron2's ResNet-``depth`` (torchvision layout, FrozenBN)."""
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # else res5 is not built
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    resnet = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    return {k: tuple(v.shape) for k, v in resnet.state_dict().items()}


def _group(names, prefix):
    """Unused names, summarised: batch-norm counters together, others grouped one level below
    where they part from the encoder's prefix ("module.encoder_k.* (320 tensors)", "fc.*")."""
    counters = [n for n in names if n.endswith(".num_batches_tracked")]
    prefix_parts = prefix.split(".")[:-1]
    groups = Counter()
    for name in names:
        if name in counters:
            continue
        parts = name.split(".")
        common = 0
        while common < min(len(parts) - 1, len(prefix_parts)) and \
                parts[common] == prefix_parts[common]:
            common += 1
        groups[".".join(parts[: common + 1])] += 1
    rows = [g if g in names else f"{g}.* ({n} tensor{'s' * (n > 1)})" for g, n in groups.items()]
    if counters:
        rows.append(f"*.num_batches_tracked ({len(counters)} batch-norm counters)")
    return rows


def convert_torchvision_resnet(checkpoint, prefix=None, source="checkpoint"):
    """Convert the ResNet inside ``checkpoint`` to detectron2's names and check it is complete.

    Args:
        checkpoint (dict): as ``torch.load`` returns it (wrappers and prefixes included).
        prefix (str or None): the encoder's prefix in the flattened checkpoint (nested dicts
            joined by "."), e.g. ``"state_dict.module.encoder_q."``; None finds it.
        source (str): names the checkpoint in errors.

    Returns:
        ResNetConversion. Raises ValueError if any weight of detectron2's ResNet is missing
        or has another shape (e.g. a wider ResNet).
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{source}: expected a dict of tensors, got {type(checkpoint).__name__}")
    tensors, others = _flatten(checkpoint)
    prefix = _find_encoder(tensors, prefix, source)
    inside = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    depth = _depth(inside, source)
    weights, unused = {}, []
    for name, value in inside.items():
        target = _detectron2_name(name)
        if target is None:
            unused.append(prefix + name)
        else:
            weights[target] = value.detach().clone().float().contiguous()
    unused += [k for k in tensors if not k.startswith(prefix)]
    _check_complete(weights, _reference_shapes(depth), source)
    grouped = _group(unused, prefix) + [f"{n} (not a tensor)" for n in others]
    weights = {TARGET_PREFIX + k: v for k, v in weights.items()}
    return ResNetConversion(weights, prefix, depth, grouped)


def _check_complete(weights, reference, source):
    missing = sorted(set(reference) - set(weights))
    unexpected = sorted(set(weights) - set(reference))
    wrong = [f"{k}: {tuple(v.shape)} vs {reference[k]}" for k, v in weights.items()
             if k in reference and tuple(v.shape) != reference[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{source} does not give a complete detectron2 ResNet:\n"
            + "".join(f"  missing {k}\n" for k in missing)
            + "".join(f"  unexpected {k}\n" for k in unexpected)
            + "".join(f"  shape {w}\n" for w in wrong)
        )
