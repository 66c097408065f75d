"""LR check of the new batch/LR rule: seed 0, each size at factor x the rule's LR.
Usage: PYTHONPATH=/tmp/issue12-tree python /tmp/issue12/lr_scan.py --data SPEC --tag NAME"""
import argparse, math, sys
from pytest_scaling import RunCache, run_sweep, get_source
from pytest_scaling.model import ModelSpec, GPT, count_params, flops_per_token
from pytest_scaling.train import default_lr, default_batch_tokens, plan_steps, LR_REF_BATCH_SEQS

ap = argparse.ArgumentParser(); ap.add_argument("--data", required=True); ap.add_argument("--tag", required=True)
ap.add_argument("--factors", default="0.5,1,2"); ap.add_argument("--sizes", default="16x1,48x2")
a = ap.parse_args()
src = get_source(a.data)
cache = RunCache(f"/tmp/issue12/cache-{a.tag}")
for size in a.sizes.split(","):
    w, d = map(int, size.split("x"))
    spec = ModelSpec(width=w, depth=d, vocab_size=src.vocab_size)
    m = GPT(spec); p = count_params(m, spec); f = flops_per_token(spec, "6N+attn", model=m, params=p)
    tokens = round(20 * p.non_embedding)
    b, sizes = plan_steps(tokens, 128, default_batch_tokens(tokens, 128))
    rule = default_lr(f * sum(sizes) * 128) * min(1.0, math.sqrt(b / LR_REF_BATCH_SEQS))
    row = []
    for fac in map(float, a.factors.split(",")):
        r = run_sweep("gpt", [dict(width=w, depth=d)], seeds=[0], tokens_per_param=20, data=a.data, cache=cache,
                      workers=1, threads=1, lr=fac * rule)
        row.append(f"x{fac}: {r.points[0].loss:.4f}")
    print(f"{size} bs={b} rule lr={rule:.4f}  " + "  ".join(row), flush=True)
