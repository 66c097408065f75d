"""Measure one candidate: reference GPT on a ladder with 2 seeds + no_attention with 1 seed.

Usage: PYTHONPATH=/tmp/issue12-tree python /tmp/issue12/measure.py --data SPEC --tag NAME [--ladder shipped]
Runs go through RunCache(/tmp/issue12/cache-<tag>) (resumable); one job at a time (workers=1).
"""
import argparse, json, math, sys, time
sys.path.insert(0, "/tmp/issue12-tree/benchmarks")
import numpy as np
from pytest_scaling import RunCache, run_sweep, get_source, backtest
from pytest_scaling.fit import bootstrap
from pytest_scaling.baseline import CURVE_LAW, fit_curve, pooled_noise
from variants import no_attention

LADDERS = {
    "shipped": [dict(width=16, depth=1), dict(width=32, depth=1), dict(width=32, depth=2),
                dict(width=48, depth=2), dict(width=64, depth=2)],
}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--ladder", default="shipped")
    ap.add_argument("--no-variant", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    sizes = LADDERS[a.ladder]
    cache = RunCache(f"/tmp/issue12/cache-{a.tag}")
    src = get_source(a.data)
    opts = dict(tokens_per_param=20, data=a.data, cache=cache, workers=1)
    if a.threads: opts["threads"] = a.threads
    t0 = time.perf_counter()
    ref = run_sweep("gpt", sizes, seeds=[0, 1], **opts)
    t_ref = time.perf_counter() - t0
    out = {"tag": a.tag, "data": a.data, "ladder": a.ladder}
    floor = src.floor_nats_per_token(128)
    out["floor"] = floor
    out["sizes"] = []
    for p in ref.points:
        recs = [r for r in ref.runs if r.spec == p.spec]
        out["sizes"].append(dict(label=p.label, N=p.params, C=p.compute, losses=p.losses, mean=p.loss,
                                 rel_spread=(max(p.losses) - min(p.losses)) / p.loss,
                                 steps=math.ceil(p.tokens / recs[0].config["batch_tokens"]),
                                 batch_seqs=recs[0].config["batch_tokens"] // 128, lr=recs[0].config["lr"],
                                 seconds=[r.seconds for r in recs]))
    out["train_seconds_ref"] = sum(r.seconds for r in ref.runs)
    out["wall_ref"] = t_ref
    out["monotone"] = bool(np.all(np.diff(ref.loss) < 0))
    noise, dof = pooled_noise([p.losses for p in ref.points])
    out["pooled_noise"] = noise
    C = np.concatenate([[p.compute] * len(p.losses) for p in ref.points])
    L = np.concatenate([p.losses for p in ref.points])
    bt = backtest(CURVE_LAW, L, C=C)
    obs, pred = bt.observed.mean(), bt.predicted.mean()
    bs = bootstrap(bt.fit, 1000)
    lo, hi = bs.predict_interval(C=np.array([ref.compute.max()]))
    out["backtest"] = dict(observed=obs, predicted=pred, error=pred / obs - 1, band=[float(lo[0]), float(hi[0])],
                           in_band_mean=bool(lo[0] <= obs <= hi[0]),
                           in_band_seeds=[bool(lo[0] <= x <= hi[0]) for x in bt.observed],
                           fit=bt.fit.params)
    curve = fit_curve(ref.compute, [p.losses for p in ref.points])
    E = curve.params["E"]
    elo, ehi = np.percentile(CURVE_LAW.params(curve.samples)["E"], [2.5, 97.5])
    out["fit_all"] = dict(params=curve.params, E=E, E_ci=[float(elo), float(ehi)], E_ok=bool(ehi >= floor),
                          min_loss_above_floor=bool(ref.loss.min() > floor))
    if not a.no_variant:
        t0 = time.perf_counter()
        var = run_sweep(no_attention, sizes, seeds=[0], **opts)
        out["wall_var"] = time.perf_counter() - t0
        out["train_seconds_var"] = sum(r.seconds for r in var.runs)
        out["no_attention_gap"] = [v.loss / r.loss - 1 for v, r in zip(var.points, ref.points)]
        out["no_attention_gap_seed0"] = [v.loss / r.losses[0] - 1 for v, r in zip(var.points, ref.points)]
        out["no_attention_losses"] = [v.loss for v in var.points]
    json.dump(out, open(f"/tmp/issue12/result-{a.tag}.json", "w"), indent=1)
    print_summary(out)

def print_summary(o):
    print(f"== {o['tag']}  data={o['data']}  floor={o['floor']:.4f}")
    for i, s in enumerate(o["sizes"]):
        g = o.get("no_attention_gap", [float('nan')] * 9)[i]
        print(f"  {s['label']:7s} N={s['N']:6d} steps={s['steps']:4d} bs={s['batch_seqs']:3d} lr={s['lr']:.4f} "
              f"loss {s['losses'][0]:.4f} {s['losses'][1]:.4f} mean {s['mean']:.4f} spread {100*s['rel_spread']:.2f}% "
              f"noattn {100*g:+.1f}%  t={sum(s['seconds']):.0f}s")
    b = o["backtest"]; f = o["fit_all"]
    print(f"  monotone={o['monotone']} pooled_noise={100*o['pooled_noise']:.2f}%")
    print(f"  backtest: obs {b['observed']:.4f} pred {b['predicted']:.4f} err {100*b['error']:+.2f}% band "
          f"{b['band'][0]:.4f}..{b['band'][1]:.4f} in_band={b['in_band_mean']} seeds={b['in_band_seeds']}")
    print(f"  fit all: E={f['E']:.3f} CI {f['E_ci'][0]:.3f}..{f['E_ci'][1]:.3f} (floor {o['floor']:.3f}) ok={f['E_ok']} "
          f"alpha={f['params'].get('alpha', float('nan')):.3f}")
    print(f"  train seconds ref {o['train_seconds_ref']:.0f} (wall {o['wall_ref']:.0f})"
          + (f", variant {o['train_seconds_var']:.0f} (wall {o['wall_var']:.0f})" if 'wall_var' in o else ""))

if __name__ == "__main__":
    main()
