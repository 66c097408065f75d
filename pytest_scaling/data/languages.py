"""The built-in generated languages, each with a known loss floor: ``topics`` (topic-biased Markov chains)
and ``synthetic`` (a Markov chain with copy spans and facts)."""

from __future__ import annotations

import math
from abc import abstractmethod
from functools import cached_property

import numpy as np

from ..errors import ScalingDataError
from .base import DataSource, _hash, _sha256, _token_dtype, _uniform


def _ranked_rows(key: int, n_rows: int, n_cols: int) -> np.ndarray:
    """[n_rows, n_cols] int64: each row a seeded permutation of ``0..n_cols-1`` (rank -> token)."""
    keys = _hash(key, np.arange(n_rows * n_cols)).reshape(n_rows, n_cols)
    return np.argsort(keys, axis=1, kind="stable").astype(np.int64)


class _DocumentLanguage(DataSource):
    """A built-in language of ``docs + val_docs`` generated documents of ``doc_len`` tokens (the last
    ``val_docs`` are the validation split), with its expected optimal loss by document position
    (``position_entropy``, 0 at BOS). Subclasses set ``params`` and ``generate``."""

    doc_len: int
    docs: int
    val_docs: int
    position_entropy: np.ndarray

    @property
    @abstractmethod
    def params(self) -> dict:
        """The options that define the language (its identity besides the content hash)."""

    @abstractmethod
    def generate(self, first_doc: int, n_docs: int) -> np.ndarray:
        """Documents ``first_doc .. first_doc + n_docs - 1`` as an [n_docs, doc_len] array."""

    @cached_property
    def identity(self) -> dict:
        return {"name": self.name, "hash": _sha256(self._tokens())[:16], **self.params}

    def _tokens(self) -> np.ndarray:
        key = self.name + repr(sorted(self.params.items()))
        if key not in _SYNTHETIC_CACHE:
            _SYNTHETIC_CACHE[key] = self.generate(0, self.docs + self.val_docs).reshape(-1)
        return _SYNTHETIC_CACHE[key]

    def _split_point(self, n: int) -> int:
        return self.docs * self.doc_len

    def floor_nats_per_token(self, seq_len: int) -> float:
        """Optimal loss of windows of ``seq_len`` targets starting at a document start."""
        positions = np.arange(1, seq_len + 1) % self.doc_len
        return float(self.position_entropy[positions].mean())


class SyntheticSource(_DocumentLanguage):
    """A synthetic language with an exactly known entropy in which attention matters.

    The corpus is ``docs + val_docs`` independent documents of ``doc_len`` tokens (the last ``val_docs``
    are the validation split); windows start at document starts. Vocabulary (``vocab`` = V): K content
    tokens ``0..K-1``, J = len(lags) * len(lengths) copy markers ``K..K+J-1`` (marker j = one (lag, length)
    pair), and BOS = V - 1. A document is BOS followed by *events*, each starting at a position m >= 1:

    * a copy, with probability ``copy / J`` for each marker j whose lag <= m: the marker, then
      ``length_j`` tokens each equal to the token ``lag_j`` positions earlier (spans may overlap
      themselves; the last one may be cut by the document end);
    * a fact, with probability ``facts`` (default 0; one more marker token, before BOS): the fact marker,
      then key1, key2 and the value of fact f, drawn with P(f) ~ (f + 1)^-fact_zipf from ``n_facts`` seeded
      (key1, key2) -> value triples of content tokens. The value depends on both keys, so a model must
      attend to the previous token and store the table in its weights: a memorisation skill that small
      models learn for the frequent facts only;
    * otherwise (probability c_m = 1 - copy * |allowed markers| / J - facts) a content token from an
      order-``order`` Markov chain: the row of the previous ``order`` tokens (BOS before the start) is a
      seeded permutation of one Zipf distribution p_r ~ (r + 1)^-zipf over K tokens (row entropy H(p)).

    Entropy. The parse into events is a deterministic function of the prefix (markers are visible, lengths
    known), so the Bayes-optimal predictor pays ``-log`` of the event's probability at each event start,
    0 inside copies and, inside a fact, ``-log P(key1)``, ``-log P(key2 | key1)`` and 0 for the value.
    With b_m = P(an event starts at m) from the recursion b_1 = 1, b_{m+1} += b_m c_m, b_{m+4} += b_m facts,
    b_{m+1+length_j} += b_m copy / J (allowed j), the expected optimal loss at position m is
    h_m = b_m * [-sum_allowed (copy/J) log(copy/J) - facts log facts - c_m log c_m + c_m H(p)]
    + b_{m-1} facts H(key1) + b_{m-2} facts (H(fact) - H(key1)), and
    ``entropy_nats_per_token`` = mean(h_1..h_{doc_len-1}): the exact floor of the loss on windows of
    ``seq_len = doc_len - 1`` (``floor_nats_per_token`` for other lengths). ``oracle_nll`` is that
    predictor, for checking.

    Defaults (V 64, order 1, 4 lags x 2 lengths, copy 0.15): floor 1.966 nats = 2.836 bits/token; the best
    unigram / bigram / trigram models get about 4.10 / 3.58 / 3.46 nats (copied tokens look random to them).
    Tiny models learn the bigram table first, then copying: at 20 tokens/parameter (AdamW, lr 3e-3,
    4096-token batches) reference models of 1.2e4 / 2.5e4 / 5.6e4 / 1.5e5 / 2.3e5 non-embedding parameters
    (``ladder()``) reached about 4.00 / 3.79 / 3.53 / 2.87 / 2.72 nats. ``order=2`` (V^2 contexts) is much
    harder. Facts do not remove the ladder's kink: with ``copy=0,facts=0.3`` a depth-2 ladder of 3.5k-99k
    parameters fell from 3.31-3.47 to 2.58-2.59 nats (floor 2.24) and a fit on all but the largest size
    missed it by +2.3% (2 seeds); with ``copy=0.03`` by +3.4%. Random numbers come from a SplitMix64 hash of
    (seed, document, position) and exact float64 arithmetic (Walker's alias sampling), so the corpus is the
    same on every machine and numpy version; 20M tokens take about 1 s of CPU.
    """

    name = "synthetic"

    def __init__(
        self,
        vocab: int = 64,
        order: int = 1,
        zipf: float = 1.0,
        copy: float = 0.15,
        facts: float = 0.0,
        n_facts: int = 2048,
        fact_zipf: float = 1.2,
        lags: tuple[int, ...] = (3, 6, 12, 24),
        lengths: tuple[int, ...] = (4, 8),
        doc_len: int = 129,
        docs: int = 2**17,
        val_docs: int = 2**11,
        seed: int = 0,
    ) -> None:
        lags, lengths = tuple(int(x) for x in lags), tuple(int(x) for x in lengths)
        self.n_markers = len(lags) * len(lengths)
        self.n_fact_markers = int(facts > 0)
        self.n_content = vocab - self.n_markers - self.n_fact_markers - 1
        checks = [
            (self.n_content >= 2, f"vocab={vocab} leaves {self.n_content} content tokens besides markers"),
            (vocab <= 2**16, f"vocab={vocab} > 65536"),
            (order in (1, 2), f"order must be 1 or 2, got {order}"),
            (zipf >= 0, f"zipf must be >= 0, got {zipf}"),
            (0 <= copy < 1, f"copy must be in [0, 1), got {copy}"),
            (0 <= facts and copy + facts < 1, f"facts must be >= 0 with copy + facts < 1, got {facts}"),
            (not facts or 1 <= n_facts <= max(self.n_content, 0) ** 2, f"n_facts not in 1..{self.n_content}**2"),
            (fact_zipf >= 0, f"fact_zipf must be >= 0, got {fact_zipf}"),
            (bool(lags) and 1 <= min(lags) and max(lags) < doc_len - 1, f"lags {lags} not in 1..doc_len-2"),
            (bool(lengths) and min(lengths) >= 1, f"lengths {lengths} must be >= 1"),
            (doc_len >= 3 and docs >= 1 and val_docs >= 1, "doc_len >= 3, docs >= 1, val_docs >= 1 needed"),
        ]
        for ok, message in checks:
            if not ok:
                raise ScalingDataError(f"synthetic source: {message}")
        self.vocab_size, self.order, self.zipf, self.copy = vocab, order, float(zipf), float(copy)
        self.facts, self.n_facts, self.fact_zipf = float(facts), int(n_facts), float(fact_zipf)
        self.lags, self.lengths, self.doc_len = lags, lengths, doc_len
        self.docs, self.val_docs, self.seed = docs, val_docs, seed
        self.window_stride = doc_len
        self.bos = vocab - 1
        self.marker_lag = np.array([lag for lag in lags for _ in lengths], dtype=np.int64)
        self.marker_len = np.array([n for _ in lags for n in lengths], dtype=np.int64)
        p = (np.arange(1, self.n_content + 1, dtype=np.float64)) ** -self.zipf
        self.p = p / p.sum()
        q = (np.arange(1, self.n_facts + 1, dtype=np.float64)) ** -self.fact_zipf
        self.q = q / q.sum()
        # weights[m] = probabilities of (copy marker 0..J-1, [fact marker], content rank 0..K-1) at m
        allowed = np.arange(doc_len)[:, None] >= self.marker_lag[None, :]
        marker_w = np.concatenate(
            [allowed * (self.copy / self.n_markers), np.full((doc_len, self.n_fact_markers), self.facts)], axis=1
        )
        content_w = 1.0 - marker_w.sum(axis=1)
        self.weights = np.concatenate([marker_w, content_w[:, None] * self.p[None, :]], axis=1)
        self.position_entropy = self._position_entropy(marker_w, content_w)
        self.entropy_nats_per_token = float(self.position_entropy[1:].mean())

    def _position_entropy(self, marker_w: np.ndarray, content_w: np.ndarray) -> np.ndarray:
        """h_m: the expected optimal loss at each document position (0 at BOS), by the renewal recursion."""
        h_p = _entropy(self.p)
        xlogx = np.where(marker_w > 0, marker_w * np.log(np.where(marker_w > 0, marker_w, 1.0)), 0.0)
        event_entropy = -xlogx.sum(axis=1) - content_w * np.log(content_w) + content_w * h_p
        span = max(int(self.marker_len.max()), 3) + 1
        start = np.zeros(self.doc_len + span)
        start[1] = 1.0
        h = np.zeros(self.doc_len + span)
        if self.n_fact_markers:
            fact_h1, fact_h = _entropy(self.key1_p), _entropy(self.q)
        for m in range(1, self.doc_len):
            h[m] += start[m] * event_entropy[m]
            start[m + 1] += start[m] * content_w[m]
            np.add.at(start, m + 1 + self.marker_len, start[m] * marker_w[m, : self.n_markers])
            if self.n_fact_markers:  # marker, first key token, second key token, value (free)
                start[m + 4] += start[m] * self.facts
                h[m + 1] += start[m] * self.facts * fact_h1
                h[m + 2] += start[m] * self.facts * (fact_h - fact_h1)
        h = h[: self.doc_len]
        h[0] = 0.0
        return h

    @property
    def entropy_bits_per_token(self) -> float:
        return self.entropy_nats_per_token / math.log(2)

    @property
    def params(self) -> dict:
        return {
            "vocab": self.vocab_size, "order": self.order, "zipf": self.zipf, "copy": self.copy,
            **({"facts": self.facts, "n_facts": self.n_facts, "fact_zipf": self.fact_zipf} if self.facts else {}),
            "lags": list(self.lags), "lengths": list(self.lengths), "doc_len": self.doc_len,
            "docs": self.docs, "val_docs": self.val_docs, "seed": self.seed,
        }  # fmt: skip

    @cached_property
    def table(self) -> np.ndarray:
        """[V**order, K]: row = context, column = rank, value = content token."""
        return _ranked_rows(self.seed * 2 + 1, self.vocab_size**self.order, self.n_content)

    @cached_property
    def fact_keys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first key, second key, value) content tokens of facts 0..n_facts-1 (a seeded choice of pairs)."""
        k = self.n_content
        pairs = np.argsort(_hash(self.seed * 2 + _FACT_KEY, np.arange(k * k)), kind="stable")[: self.n_facts]
        values = _hash(self.seed * 2 + _FACT_KEY + 1, np.arange(self.n_facts)) % np.uint64(k)
        return pairs // k, pairs % k, values.astype(np.int64)

    @cached_property
    def key1_p(self) -> np.ndarray:
        """P(key1 = token) over the content tokens: the sum of the probabilities of its facts."""
        return np.bincount(self.fact_keys[0], self.q, self.n_content)

    @cached_property
    def _fact_of_pair(self) -> np.ndarray:
        """[K * K]: the fact with keys (key1, key2) at key1 * K + key2, or -1."""
        key1, key2, _ = self.fact_keys
        fact_of_pair = np.full(self.n_content**2, -1)
        fact_of_pair[key1 * self.n_content + key2] = np.arange(self.n_facts)
        return fact_of_pair

    def _fact_nll(self, x: np.ndarray, m: int, phase: np.ndarray) -> np.ndarray:
        """Oracle loss at position ``m`` of position-major ``x`` inside a fact (``phase`` 1, 2, 3 = key1,
        key2, value): ``-log P(key1)``, ``-log P(key2 | key1)``, 0; inf for a token the fact cannot emit."""
        k, key1, value = self.n_content, self.fact_keys[0], self.fact_keys[2]
        tok, prev, prev2 = (np.minimum(x[m - i], k - 1) for i in (0, 1, 2))
        pair, fact = self._fact_of_pair[prev * k + tok], self._fact_of_pair[prev2 * k + prev]
        with np.errstate(divide="ignore"):
            log_p_key1, log_q = np.log(self.key1_p), np.log(self.q)
        nll = np.select(
            [phase == 1, phase == 2],
            [-log_p_key1[tok], np.where(pair >= 0, log_p_key1[key1[pair]] - log_q[pair], np.inf)],
            np.where((fact >= 0) & (x[m] == value[fact]), 0.0, np.inf),
        )
        return np.where(x[m] < k, nll, np.inf)

    def _context(self, prev2: np.ndarray, prev1: np.ndarray) -> np.ndarray:
        return prev1 if self.order == 1 else prev2 * self.vocab_size + prev1

    def generate(self, first_doc: int, n_docs: int) -> np.ndarray:
        """Documents ``first_doc .. first_doc + n_docs - 1`` as an [n_docs, doc_len] array."""
        length, n_markers, n_cat = self.doc_len, self.n_markers, self.weights.shape[1]
        n_special = n_markers + self.n_fact_markers
        accept, alias = _alias_tables(self.weights)
        if self.n_fact_markers:
            fact_accept, fact_alias = _alias_tables(self.q[None, :])
            key1, key2, value = (k.astype(np.int32) for k in self.fact_keys)
        # emit[context, category]: the token of each event category (markers, then content ranks)
        markers = np.broadcast_to(self.n_content + np.arange(n_special), (len(self.table), n_special))
        emit = np.concatenate([markers, self.table], axis=1).astype(np.int32).ravel()
        copy_len = np.zeros(n_cat, dtype=np.int32)
        copy_lag = np.zeros(n_cat, dtype=np.int32)
        copy_len[:n_markers], copy_lag[:n_markers] = self.marker_len, self.marker_lag
        doc_ids = np.arange(first_doc, first_doc + n_docs, dtype=np.uint64) * np.uint64(length)
        x = np.empty((length, n_docs), dtype=np.int32)  # position-major: one contiguous row per step
        flat = x.reshape(-1)
        x[0] = self.bos
        rows = np.arange(n_docs, dtype=np.int64)
        remaining = np.zeros(n_docs, dtype=np.int32)
        lag = np.zeros(n_docs, dtype=np.int32)
        phase = np.zeros(n_docs, dtype=np.int32)  # 1, 2, 3: the next token is a fact's key1, key2, value
        fact = np.zeros(n_docs, dtype=np.int32)
        for m in range(1, length):
            scaled = _uniform(self.seed * 2, doc_ids + np.uint64(m)) * n_cat  # alias method, one draw
            k = scaled.astype(np.int32)
            k = np.where(scaled - k < np.take(accept[m], k), k, np.take(alias[m], k))
            prev2 = x[m - 2] if m >= 2 else x[0]
            drawn = np.take(emit, self._context(prev2, x[m - 1]) * n_cat + k)
            copying = remaining > 0
            x[m] = np.where(copying, np.take(flat, (m - lag) * n_docs + rows), drawn)
            remaining = np.where(copying, remaining - 1, np.take(copy_len, k))
            lag = np.where(copying, lag, np.take(copy_lag, k))
            if self.n_fact_markers:
                in_fact = phase > 0
                fact_token = np.select([phase == 1, phase == 2], [key1[fact], key2[fact]], value[fact])
                x[m] = np.where(in_fact, fact_token, x[m])
                remaining = np.where(in_fact, 0, remaining)
                starts = ~in_fact & ~copying & (k == n_markers)
                scaled = _uniform(self.seed * 2 + _FACT_KEY, doc_ids + np.uint64(m)) * self.n_facts
                f = scaled.astype(np.int32)
                f = np.where(scaled - f < np.take(fact_accept[0], f), f, np.take(fact_alias[0], f))
                fact = np.where(starts, f, fact)
                phase = np.where(in_fact, (phase + 1) % 4, np.where(starts, 1, 0))
        return x.T.astype(_token_dtype(self.vocab_size))

    def oracle_nll(self, docs: np.ndarray) -> np.ndarray:
        """Per-token loss [n, doc_len - 1] of the Bayes-optimal predictor on [n, doc_len] documents
        (positions 1..doc_len-1); ``inf`` where a token is impossible under the process."""
        x = docs.T.astype(np.int64)
        n_markers, n_content = self.n_markers, self.n_content
        n_special = n_markers + self.n_fact_markers
        rank = np.argsort(self.table, axis=1)  # rank[ctx, token] for content tokens
        rows = np.arange(x.shape[1])
        remaining = np.zeros(x.shape[1], dtype=np.int64)
        lag = np.zeros(x.shape[1], dtype=np.int64)
        phase = np.zeros(x.shape[1], dtype=np.int64)  # 1, 2, 3: inside a fact, at key1, key2, value
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        loss = np.zeros((self.doc_len - 1, x.shape[1]))
        for m in range(1, self.doc_len):
            tok = x[m]
            copying = remaining > 0
            in_fact = phase > 0
            is_marker = (tok >= n_content) & (tok < n_content + n_special)
            prev2 = x[m - 2] if m >= 2 else x[0]
            content_rank = rank[self._context(prev2, x[m - 1]), np.minimum(tok, n_content - 1)]
            category = np.where(is_marker, tok - n_content, n_special + content_rank)
            event_loss = np.where(is_marker | (tok < n_content), -log_w[m, category], np.inf)
            copy_loss = np.where(tok == x[m - lag, rows], 0.0, np.inf)
            loss[m - 1] = np.where(copying, copy_loss, event_loss)
            starts = ~copying & ~in_fact & is_marker & (tok < n_content + n_markers)
            j = np.clip(tok - n_content, 0, n_markers - 1)
            remaining = np.where(copying, remaining - 1, np.where(starts, self.marker_len[j], 0))
            lag = np.where(starts, self.marker_lag[j], lag)
            if self.n_fact_markers:
                loss[m - 1] = np.where(in_fact, self._fact_nll(x, m, phase), loss[m - 1])
                fact_starts = ~copying & ~in_fact & (tok == n_content + n_markers)
                phase = np.where(in_fact, (phase + 1) % 4, np.where(fact_starts, 1, 0))
        return loss.T


_SYNTHETIC_CACHE: dict[str, np.ndarray] = {}


class TopicSource(_DocumentLanguage):
    """A mixture of topic-biased Markov chains: context (the document's topic) matters at every size, and
    there are many topics of Zipfian frequency, each a small table to memorise.

    Vocabulary V = ``vocab``: content tokens ``0..V-2`` and BOS = V - 1. Each document draws a hidden topic
    z with P(z) ~ (z + 1)^-``topic_zipf`` among ``topics``; then every token is drawn from
    P(x | prev, z) = (1 - ``mix``) B[prev, x] + ``mix`` U_z[x]: B an order-1 Markov chain whose rows are
    seeded permutations of one Zipf distribution (exponent ``zipf``; as in :class:`SyntheticSource`), U_z
    a seeded permutation of a Zipf distribution (exponent ``word_zipf``) over the content tokens. From the
    second content token on, with probability ``cache`` the token instead repeats the token at a uniformly
    drawn earlier position (a cache, or Polya urn: words recur within a document as in real text), so the
    whole context pays: the document's own word counts add to what its topic tells. A model must infer the
    topic, count the context (attention) and know U_z: it learns the frequent topics first. The
    Bayes-optimal predictor is the exact posterior mixture over topics (``oracle_nll``); the floor is its
    mean loss on the validation documents (exact for that split; sampling error about 0.003) and lies
    within H(Z) / (doc_len - 1) above the loss given the topic. ``cache=0`` is the language before the cache
    existed: the same tokens and data identity, so its baselines still match.
    """

    name = "topics"

    def __init__(
        self,
        vocab: int = 64,
        topics: int = 16,
        topic_zipf: float = 1.0,
        mix: float = 0.7,
        zipf: float = 1.0,
        word_zipf: float = 1.5,
        cache: float = 0.5,
        doc_len: int = 129,
        docs: int = 2**17,
        val_docs: int = 2**11,
        seed: int = 0,
    ) -> None:
        checks = [
            (3 <= vocab <= 2**16, f"vocab must be in 3..65536, got {vocab}"),
            (topics >= 1, f"topics must be >= 1, got {topics}"),
            (0 <= mix <= 1, f"mix must be in [0, 1], got {mix}"),
            (0 <= cache < 1, f"cache must be in [0, 1), got {cache}"),
            (min(topic_zipf, zipf, word_zipf) >= 0, "zipf exponents must be >= 0"),
            (doc_len >= 3 and docs >= 1 and val_docs >= 1, "doc_len >= 3, docs >= 1, val_docs >= 1 needed"),
        ]
        for ok, message in checks:
            if not ok:
                raise ScalingDataError(f"topics source: {message}")
        self.vocab_size, self.n_content, self.topics = vocab, vocab - 1, topics
        self.topic_zipf, self.mix, self.cache = float(topic_zipf), float(mix), float(cache)
        self.zipf, self.word_zipf = float(zipf), float(word_zipf)
        self.doc_len, self.docs, self.val_docs, self.seed = doc_len, docs, val_docs, seed
        self.window_stride = doc_len
        self.bos = vocab - 1
        ranks = np.arange(1, self.n_content + 1, dtype=np.float64)
        self.p, self.u = ranks**-self.zipf, ranks**-self.word_zipf
        self.p, self.u = self.p / self.p.sum(), self.u / self.u.sum()
        q = np.arange(1, topics + 1, dtype=np.float64) ** -self.topic_zipf
        self.q = q / q.sum()

    @property
    def params(self) -> dict:
        return {"vocab": self.vocab_size, "topics": self.topics, "topic_zipf": self.topic_zipf, "mix": self.mix,
                "zipf": self.zipf, "word_zipf": self.word_zipf, "doc_len": self.doc_len, "docs": self.docs,
                "val_docs": self.val_docs, "seed": self.seed,
                **({"cache": self.cache} if self.cache else {})}  # fmt: skip

    @cached_property
    def table(self) -> np.ndarray:
        """[V, K]: the Markov row of each previous token: rank -> content token (the synthetic language's)."""
        return _ranked_rows(self.seed * 2 + 1, self.vocab_size, self.n_content)

    @cached_property
    def topic_words(self) -> np.ndarray:
        """[Z, K]: each topic's rank -> content token."""
        return _ranked_rows(self.seed * 2 + _TOPIC_KEY, self.topics, self.n_content)

    @cached_property
    def probs(self) -> tuple[np.ndarray, np.ndarray]:
        """(B [V, K], U [Z, K]): token probabilities of the Markov rows and of the topics."""
        B = np.zeros((self.vocab_size, self.n_content))
        np.put_along_axis(B, self.table, np.broadcast_to(self.p, B.shape), axis=1)
        U = np.zeros((self.topics, self.n_content))
        np.put_along_axis(U, self.topic_words, np.broadcast_to(self.u, U.shape), axis=1)
        return B, U

    def doc_topics(self, first_doc: int, n_docs: int) -> np.ndarray:
        ids = np.arange(first_doc, first_doc + n_docs, dtype=np.uint64)
        scaled = _uniform(self.seed * 2 + _TOPIC_KEY + 1, ids) * self.topics
        accept, alias = _alias_tables(self.q[None, :])
        z = scaled.astype(np.int64)
        return np.where(scaled - z < accept[0][z], z, alias[0][z])

    def generate(self, first_doc: int, n_docs: int) -> np.ndarray:
        """Documents ``first_doc .. first_doc + n_docs - 1`` as an [n_docs, doc_len] array."""
        K, length = self.n_content, self.doc_len
        z = self.doc_topics(first_doc, n_docs)
        acc_p, ali_p = (a[0] for a in _alias_tables(self.p[None, :]))
        acc_u, ali_u = (a[0] for a in _alias_tables(self.u[None, :]))
        table, words = self.table.ravel(), self.topic_words.ravel()
        doc_ids = np.arange(first_doc, first_doc + n_docs, dtype=np.uint64) * np.uint64(length)
        x = np.empty((length, n_docs), dtype=np.int64)
        x[0] = self.bos
        columns = np.arange(n_docs)
        for m in range(1, length):
            counters = (doc_ids + np.uint64(m)) * np.uint64(2)
            pick = _uniform(self.seed * 2, counters) < self.mix  # the topic component
            scaled = _uniform(self.seed * 2, counters + np.uint64(1)) * K
            r = scaled.astype(np.int64)
            frac = scaled - r
            r_p = np.where(frac < acc_p[r], r, ali_p[r])
            r_u = np.where(frac < acc_u[r], r, ali_u[r])
            x[m] = np.where(pick, np.take(words, z * K + r_u), np.take(table, x[m - 1] * K + r_p))
            if self.cache and m >= 2:  # repeat the token at a uniformly drawn earlier position 1..m-1
                repeat = _uniform(self.seed * 2 + _CACHE_KEY, counters) < self.cache
                earlier = 1 + (_uniform(self.seed * 2 + _CACHE_KEY, counters + np.uint64(1)) * (m - 1)).astype(np.int64)
                x[m] = np.where(repeat, x[earlier, columns], x[m])
        return x.T.astype(_token_dtype(self.vocab_size))

    def oracle_nll(self, docs: np.ndarray, topic_known: bool = False) -> np.ndarray:
        """Per-token loss [n, doc_len - 1] of the Bayes-optimal predictor (the posterior over topics);
        with ``topic_known`` the loss given each document's true topic (from its index: docs must be the
        validation split in order)."""
        B, U = self.probs
        x = docs.astype(np.int64)
        n = len(x)
        log_post = np.broadcast_to(np.log(self.q), (n, self.topics)).copy()
        loss = np.zeros((n, self.doc_len - 1))
        counts = np.zeros((n, self.n_content))  # of each content token at positions 1..m-1
        rows = np.arange(n)
        if topic_known:
            z = self.doc_topics(self.docs, n)
        for m in range(1, self.doc_len):
            tok = np.minimum(x[:, m], self.n_content - 1)
            like = (1 - self.mix) * B[x[:, m - 1], tok][:, None] + self.mix * U[:, tok].T  # [n, Z]
            if self.cache and m >= 2:
                like = (1 - self.cache) * like + self.cache * (counts[rows, tok] / (m - 1))[:, None]
            counts[rows, tok] += 1
            if topic_known:
                loss[:, m - 1] = -np.log(like[rows, z])
            else:
                w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
                w /= w.sum(axis=1, keepdims=True)
                loss[:, m - 1] = -np.log((w * like).sum(axis=1))
            log_post += np.log(like)
        return loss

    @cached_property
    def position_entropy(self) -> np.ndarray:
        """Mean oracle loss at each document position (0 at BOS) over the validation documents."""
        docs = self.split("val").reshape(-1, self.doc_len)
        return np.concatenate([[0.0], self.oracle_nll(docs).mean(axis=0)])

    @property
    def entropy_nats_per_token(self) -> float:
        return float(self.position_entropy[1:].mean())


_TOPIC_KEY = 0x70B1C << 32
_CACHE_KEY = 0xCAC4E << 32
_FACT_KEY = 0xFAC7 << 32  # offsets the facts' hash keys from the events' and the Markov table's


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _alias_tables(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables for each row of ``weights`` (rows sum to 1): category ``i`` drawn uniformly
    is kept with probability ``accept[i]``, else replaced by ``alias[i]``. Exact in float64."""
    n_rows, n_cat = weights.shape
    accept = np.ones((n_rows, n_cat))
    alias = np.tile(np.arange(n_cat, dtype=np.int32), (n_rows, 1))
    for row in range(n_rows):
        scaled = weights[row] * n_cat / weights[row].sum()
        small = [i for i in range(n_cat) if scaled[i] < 1.0]
        large = [i for i in range(n_cat) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            accept[row, s], alias[row, s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
    return accept, alias
