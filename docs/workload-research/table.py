"""Print the REPORT's table rows from /tmp/issue12/result-*.json."""
import json, sys
for tag in sys.argv[1:]:
    o = json.load(open(f"/tmp/issue12/result-{tag}.json"))
    s = o["sizes"]; b = o["backtest"]; f = o["fit_all"]
    means = " / ".join(f"{x['mean']:.3f}" for x in s)
    spreads = " / ".join(f"{100 * x['rel_spread']:.1f}" for x in s)
    gaps = " / ".join(f"{100 * g:+.1f}" for g in o.get("no_attention_gap", []))
    print(f"| {tag} | {means} | {spreads} | {100 * o['pooled_noise']:.2f}% | {'yes' if o['monotone'] else 'no'} | "
          f"{100 * b['error']:+.2f}% ({b['predicted']:.3f} vs {b['observed']:.3f}); band {b['band'][0]:.3f}-{b['band'][1]:.3f}: "
          f"{'in' if b['in_band_mean'] else 'OUT'} | {f['E']:.2f} ({f['E_ci'][0]:.2f}-{f['E_ci'][1]:.2f}) vs {o['floor']:.3f}: "
          f"{'ok' if f['E_ok'] else 'BELOW'} | {gaps} | {o['wall_ref']:.0f} s + {o.get('wall_var', 0):.0f} s |")
