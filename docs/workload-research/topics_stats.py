"""Floors and reference predictors of a topics language: oracle (posterior), topic known, no-topic (bigram
mixture: what an attention-free model can reach at best), and the per-position floor."""
import sys, time, numpy as np
from pytest_scaling import get_source
spec = sys.argv[1]
t = time.time(); s = get_source(spec); tok = s._tokens(); gen = time.time() - t
B, U = s.probs
val = s.split("val").reshape(-1, s.doc_len).astype(np.int64)
orc = s.oracle_nll(val); known = s.oracle_nll(val, topic_known=True)
marg = (1 - s.mix) * B + s.mix * (s.q @ U)[None, :]
notopic = -np.log(marg[val[:, :-1], np.minimum(val[:, 1:], s.n_content - 1)])
sub = val[(np.arange(512) * len(val)) // 512]
print(f"{spec}: gen {gen:.1f}s; floor (oracle, all val docs) {orc.mean():.4f} +- {orc.mean(1).std() / np.sqrt(len(val)):.4f}; "
      f"on the 512 strided eval docs {s.oracle_nll(sub).mean():.4f}; topic known {known.mean():.4f}; "
      f"best attention-free (bigram mixture) {notopic.mean():.4f}; H(Z)/128 = {-(s.q * np.log(s.q)).sum() / 128:.4f}")
print("oracle by position (1,2,4,8,16,32,64,128):", [round(float(orc[:, i - 1].mean()), 3) for i in (1, 2, 4, 8, 16, 32, 64, 128)])
