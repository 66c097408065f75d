"""Data sources: the built-in languages' floors, determinism, rank sharding, validation windows, user data,
specs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from pytest_scaling.data import (
    BinSource,
    ByteSource,
    DataSource,
    PyCodeSource,
    StdlibSource,
    SyntheticSource,
    TopicSource,
    get_source,
)
from pytest_scaling.data.pycode import PYCODE_BYTES
from pytest_scaling.errors import ScalingDataError

SMALL = "synthetic:docs=512,val_docs=64"


def _conditional_entropy(docs: np.ndarray, k: int, vocab: int) -> float:
    """Plug-in H(x_t | previous k tokens) in nats (biased low: a lower bound on any k-gram model)."""
    docs = docs.astype(np.int64)
    context = np.zeros((docs.shape[0], docs.shape[1] - k), dtype=np.int64)
    for i in range(k):
        context = context * vocab + docs[:, i : docs.shape[1] - k + i]
    joint = np.unique((context * vocab + docs[:, k:]).ravel(), return_counts=True)[1]
    marginal = np.unique(context.ravel(), return_counts=True)[1]
    n = joint.sum()
    return float((-(joint * np.log(joint / n)).sum() + (marginal * np.log(marginal / n)).sum()) / n)


# ------------------------------------------------------------------------------------------- topics


@pytest.mark.parametrize(("cache", "digest"), [(0.5, "262bf4c5a75bf74e"), (0.0, "3dc9b06a111e77e4")])
def test_topics_stream_is_pinned(cache, digest):
    """The default language (and the one without a cache, as it was before the cache existed): integer hashing
    and exact float64 alias tables, the same on every machine."""
    docs = TopicSource(cache=cache).generate(0, 64)
    assert docs.shape == (64, 129) and docs.dtype == np.uint8
    assert (docs[:, 0] == 63).all() and docs[:, 1:].max() < 63
    assert hashlib.sha256(docs.tobytes()).hexdigest()[:16] == digest
    assert np.array_equal(TopicSource(cache=cache).generate(10, 5), docs[10:15])  # documents are independent


def test_topics_without_a_cache_keep_their_identity():
    """``cache=0`` is the language from before the option: the same options in its identity, so its
    baselines still match (its cached runs retrain once: the source's code is part of a run's key)."""
    assert "cache" not in TopicSource(cache=0, docs=8, val_docs=8).params
    assert TopicSource(docs=8, val_docs=8).params["cache"] == 0.5


def _topic_known_entropy(source: TopicSource) -> float:
    """Exact E[-log P(x_m | x_{m-1}, z)] over positions 1..doc_len-1: each topic's chain run forward from BOS."""
    B, U = source.probs
    K, total = source.n_content, 0.0
    for z in range(source.topics):
        P = (1 - source.mix) * B[:K] + source.mix * U[z]  # [K, K]: next-token law after each content token
        row_entropy = -(P * np.log(P)).sum(axis=1)
        first = (1 - source.mix) * B[source.bos] + source.mix * U[z]  # after BOS
        h, dist = [-(first * np.log(first)).sum()], first
        for _ in range(source.doc_len - 2):
            h.append(dist @ row_entropy)
            dist = dist @ P
        total += source.q[z] * np.mean(h)
    return float(total)


@pytest.mark.parametrize(
    "options", [dict(cache=0), dict(vocab=20, topics=5, mix=0.4, topic_zipf=0.5, cache=0, doc_len=40, seed=2)]
)
def test_topics_floor_is_bracketed_by_exact_entropies(options):
    """Without the cache (each topic's chain is then order-1 Markov): the floor (the exact posterior's mean
    loss) lies between the exactly computed loss with the topic known and that plus H(Z) / (doc_len - 1); the
    sampled topic-known loss matches its exact value."""
    source = TopicSource(**options, docs=64, val_docs=4096)
    docs = source.split("val").reshape(-1, source.doc_len)
    known = source.oracle_nll(docs, topic_known=True).mean(axis=1)
    stderr = known.std(ddof=1) / np.sqrt(len(known))
    exact = _topic_known_entropy(source)
    assert abs(known.mean() - exact) < 4 * stderr
    topic_entropy = -(source.q * np.log(source.q)).sum()
    floor = source.entropy_nats_per_token
    assert exact - 4 * stderr < floor < exact + topic_entropy / (source.doc_len - 1) + 4 * stderr
    assert source.floor_nats_per_token(source.doc_len - 1) == pytest.approx(floor)


def test_topics_cache_oracle_is_the_generators_law():
    """With the cache, the topic-known oracle scores each token by the law the generator samples from: its
    loss equals -log of the full next-token distribution (built here from the definition), and its mean
    equals that distribution's mean entropy (a predictor that is the true law is calibrated); the floor
    stays within H(Z) / (doc_len - 1) above it."""
    source = TopicSource(vocab=20, topics=5, mix=0.4, cache=0.5, doc_len=40, docs=64, val_docs=4096, seed=3)
    docs = source.split("val").reshape(-1, source.doc_len).astype(np.int64)
    B, U = source.probs
    z = source.doc_topics(source.docs, len(docs))
    rows = np.arange(len(docs))
    counts = np.zeros((len(docs), source.n_content))
    nll, entropy = [], []
    for m in range(1, source.doc_len):
        p = (1 - source.mix) * B[docs[:, m - 1]] + source.mix * U[z]  # [n, K]
        if m >= 2:
            p = (1 - source.cache) * p + source.cache * counts / (m - 1)
        nll.append(-np.log(p[rows, docs[:, m]]))
        entropy.append(-(p * np.log(np.where(p > 0, p, 1))).sum(axis=1))
        counts[rows, docs[:, m]] += 1
    nll, entropy = np.array(nll).T, np.array(entropy).T
    np.testing.assert_allclose(source.oracle_nll(docs, topic_known=True), nll, rtol=1e-9)
    per_doc = nll.mean(axis=1) - entropy.mean(axis=1)
    assert abs(per_doc.mean()) < 4 * per_doc.std(ddof=1) / np.sqrt(len(per_doc))
    topic_entropy = -(source.q * np.log(source.q)).sum()
    known, floor = nll.mean(), source.entropy_nats_per_token
    assert known - 1e-9 < floor < known + topic_entropy / (source.doc_len - 1)


def test_topics_need_context():
    """A predictor that knows the Markov chain but not the topic does measurably worse than the floor."""
    source = get_source("topics")
    docs = source.split("val").reshape(-1, source.doc_len).astype(np.int64)
    B, U = source.probs
    mixture = (1 - source.mix) * B + source.mix * (source.q @ U)  # the topic marginalised out
    markov = -np.log(mixture[docs[:, :-1], docs[:, 1:]]).mean()
    assert markov > source.entropy_nats_per_token + 0.3


@pytest.mark.parametrize(
    ("spec", "message"),
    [("topics:mix=1.5", "mix"), ("topics:topics=0", "topics must be"), ("topics:vocab=2", "vocab"),
     ("topics:word_zipf=-1", "zipf"), ("topics:cache=1", "cache must be")],
)  # fmt: skip
def test_topics_bad_options(spec, message):
    with pytest.raises(ScalingDataError, match=message):
        get_source(spec)


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_stream_is_pinned():
    """Integer hashing and exact float64 arithmetic only: the stream must not change across versions."""
    docs = SyntheticSource().generate(0, 64)
    assert docs.shape == (64, 129) and docs.dtype == np.uint8
    assert (docs[:, 0] == 63).all() and docs[:, 1:].max() < 63
    assert hashlib.sha256(docs.tobytes()).hexdigest()[:16] == PINNED_DIGEST
    assert np.array_equal(SyntheticSource().generate(10, 5), docs[10:15])  # documents are independent


PINNED_DIGEST = "2f8399faddc39f40"


def test_synthetic_generation_speed():
    source = SyntheticSource(seed=7)
    source.table  # noqa: B018 (build the Markov table outside the timing)
    start = time.perf_counter()
    docs = source.generate(0, 2**14)  # 2.1M tokens
    assert time.perf_counter() - start < 1.5
    assert docs.size == 2**14 * 129


def test_entropy_matches_oracle_log_loss():
    source = get_source("synthetic")
    docs = source.split("val").reshape(-1, source.doc_len)
    nll = source.oracle_nll(docs)
    assert np.isfinite(nll).all()
    per_doc = nll.mean(axis=1)  # documents are iid: an exact standard error
    stderr = per_doc.std(ddof=1) / np.sqrt(len(per_doc))
    assert abs(per_doc.mean() - source.entropy_nats_per_token) < 4 * stderr
    assert stderr < 0.01
    assert source.entropy_bits_per_token == pytest.approx(source.entropy_nats_per_token / np.log(2))
    assert source.floor_nats_per_token(source.doc_len - 1) == pytest.approx(source.entropy_nats_per_token)


@pytest.mark.parametrize(
    "options",
    [
        dict(vocab=32, order=2, copy=0.3, lags=(3, 5), lengths=(2, 9), doc_len=40, zipf=1.5, seed=3),
        dict(vocab=24, copy=0.1, facts=0.3, n_facts=150, fact_zipf=0.8, lags=(2, 7), lengths=(3,), doc_len=30),
    ],
)
def test_entropy_matches_oracle_other_settings(options):
    source = SyntheticSource(**options, docs=8, val_docs=8)
    nll = source.oracle_nll(source.generate(0, 20_000))
    per_doc = nll.mean(axis=1)
    stderr = per_doc.std(ddof=1) / np.sqrt(len(per_doc))
    assert np.isfinite(nll).all()
    assert abs(per_doc.mean() - source.entropy_nats_per_token) < 4 * stderr
    # the mean loss at each position matches h_m too (checks the renewal recursion, not only its mean)
    by_position = nll.mean(axis=0)
    assert np.abs(by_position - source.position_entropy[1:]).max() < 0.1


def test_oracle_rejects_tokens_the_process_cannot_emit():
    source = SyntheticSource(docs=8, val_docs=8)
    docs = source.generate(0, 200)
    copied = np.argwhere(source.oracle_nll(docs) == 0)[0]  # a token inside a copy span
    docs[copied[0], copied[1] + 1] = (docs[copied[0], copied[1] + 1] + 1) % source.n_content
    assert np.isinf(source.oracle_nll(docs)[copied[0], copied[1]])


def test_facts_follow_their_table():
    source = SyntheticSource(facts=0.2, n_facts=300, docs=8, val_docs=8)
    assert source.identity["facts"] == 0.2 and "facts" not in SyntheticSource(docs=8, val_docs=8).identity
    docs = source.generate(0, 500)
    marker = source.n_content + source.n_markers
    key1, key2, value = source.fact_keys
    rows, cols = np.nonzero(docs[:, 1:-3] == marker)
    cols += 1
    inside_copy = source.oracle_nll(docs)[rows, cols - 1] == 0  # a marker token that was copied
    rows, cols = rows[~inside_copy], cols[~inside_copy]
    assert len(rows) > 1000
    facts = {(int(a), int(b)): int(v) for a, b, v in zip(key1, key2, value, strict=True)}
    triples = docs[rows[:, None], cols[:, None] + np.arange(1, 4)]
    assert all(facts[(a, b)] == v for a, b, v in triples.tolist())
    counts = np.bincount([list(facts).index((a, b)) for a, b, _ in triples.tolist()], minlength=300)
    assert counts[:10].sum() > counts[-100:].sum()  # Zipf-distributed facts
    wrong = docs.copy()
    wrong[rows[0], cols[0] + 3] = (wrong[rows[0], cols[0] + 3] + 1) % source.n_content
    nll = source.oracle_nll(wrong)[rows[0]]
    assert np.isinf(nll[cols[0] + 2]) and np.isfinite(nll[: cols[0] + 2]).all()


def test_not_an_ngram_task():
    source = get_source("synthetic")
    docs = source.split("train")[: 20_000 * source.doc_len].reshape(-1, source.doc_len)
    floor = source.entropy_nats_per_token
    for k in (1, 2):  # plug-in estimates are biased low, so this understates the gap
        assert _conditional_entropy(docs, k, source.vocab_size) > floor + 1.0


def test_floor_for_other_window_lengths():
    source = get_source("synthetic")
    assert source.floor_nats_per_token(16) > source.floor_nats_per_token(128)  # less context for copies
    # windows longer than a document wrap to the next one (its BOS costs nothing)
    h = source.position_entropy  # targets 1..128, then 129 = the next BOS (free), then 1..127
    assert source.floor_nats_per_token(256) == pytest.approx((h[1:].sum() + h[1:128].sum()) / 256)


@pytest.mark.parametrize(
    "spec",
    ["synthetic:vocab=2", "synthetic:copy=1.5", "synthetic:order=3", "synthetic:lags=0", "synthetic:x=1",
     "synthetic:facts=0.9", "synthetic:facts=0.1,n_facts=5000", "synthetic:facts=0.1,fact_zipf=-1"],
)
def test_synthetic_bad_options(spec):
    with pytest.raises(ScalingDataError, match="synthetic source"):
        get_source(spec)


# -------------------------------------------------------------------------------------------- batching


def test_train_batches_deterministic():
    source = get_source(SMALL)
    first = [b for _, b in zip(range(3), source.train_batches(4, 128, seed=1), strict=False)]
    again = [b for _, b in zip(range(3), source.train_batches(4, 128, seed=1), strict=False)]
    other = next(source.train_batches(4, 128, seed=2))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other)
    assert first[0].shape == (4, 129) and first[0].dtype == torch.int64
    assert (first[0][:, 0] == source.vocab_size - 1).all()  # synthetic windows start at a document


@pytest.mark.parametrize("spec", [SMALL, "stdlib:max_bytes=200000"])
def test_ranks_are_disjoint_and_union_is_the_global_batch(spec):
    source = get_source(spec)
    single = source.train_batches(8, 32, seed=5)
    ranks = [source.train_batches(4, 32, seed=5, rank=r, world_size=2) for r in range(2)]
    for _ in range(5):
        a, b = next(ranks[0]), next(ranks[1])
        assert torch.equal(torch.cat([a, b]), next(single))
        rows_a, rows_b = {tuple(r.tolist()) for r in a}, {tuple(r.tolist()) for r in b}
        assert not rows_a & rows_b


def test_epochs_cover_disjoint_windows(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 10_240, dtype=np.uint8).tobytes())
    source = get_source(f"text:{path}")
    batches = source.train_batches(4, 32, seed=0)
    train = source.split("train")
    assert len(train) == 9216  # the last 10% is validation
    n_windows = len(range(0, len(train) - 32, 33))  # 279 non-overlapping windows of 33 bytes
    starts = []
    for _ in range(100):  # more than one epoch
        for row in next(batches).numpy():
            hits = np.flatnonzero(train[: len(train) - 32] == row[0])
            starts.append(next(s for s in hits if np.array_equal(train[s : s + 33], row)))
    first_epoch = starts[:n_windows]
    assert len(set(first_epoch)) == n_windows and all(s % 33 == 0 for s in first_epoch)  # a shuffled grid
    assert first_epoch != sorted(first_epoch)
    second_epoch = starts[n_windows : 2 * n_windows]
    assert len({s % 33 for s in second_epoch}) == 1 and second_epoch[0] % 33 != 0  # a shifted grid


def test_val_batches_fixed_and_held_out():
    source = get_source(SMALL)
    val = source.val_batches(128, n_tokens=1000, batch_size=3)
    assert [len(b) for b in val] == [3, 3, 2]  # ceil(1000 / 128) = 8 windows
    again = source.val_batches(128, n_tokens=1000, batch_size=3)
    assert all(torch.equal(a, b) for a, b in zip(val, again, strict=True))
    starts = [i * 64 // 8 * 129 for i in range(8)]  # 8 windows spread evenly over the split's 64 documents
    expected = torch.from_numpy(np.stack([source.split("val")[s : s + 129] for s in starts]).astype(np.int64))
    assert torch.equal(torch.cat(val), expected)
    assert len(source.split("val")) == 64 * 129 and len(source.split("train")) == 512 * 129


def test_bad_batch_requests():
    source = get_source(SMALL)
    with pytest.raises(ScalingDataError):
        next(source.train_batches(4, 32, seed=0, rank=2, world_size=2))
    with pytest.raises(ScalingDataError, match="too few"):
        source.val_batches(10_000)


# ---------------------------------------------------------------------------------------- real data


def test_stdlib_source():
    source = get_source("stdlib:max_bytes=300000")
    assert isinstance(source, StdlibSource)
    assert source.vocab_size == 256 and source.bytes_per_token == 1.0
    assert source.entropy_nats_per_token is None and source.floor_nats_per_token(64) is None
    assert source.identity["bytes"] == 300_000
    assert StdlibSource(max_bytes=300_000).identity == source.identity  # content-hashed, stable
    assert StdlibSource(max_bytes=200_000).identity["hash"] != source.identity["hash"]
    files = list(source.files())
    assert all(f.suffix == ".py" and "site-packages" not in f.parts for f in files[:50])
    text = bytes(source.split("train")[:2000])
    assert b"def " in text or b"import " in text


def test_pycode_is_frozen_real_text_the_tokenizer_reproduces():
    source = get_source("pycode")
    assert isinstance(source, PyCodeSource) and source is get_source("pycode")
    tokens = source._tokens()
    assert len(tokens) == 4_577_545 and tokens.dtype == np.dtype("<u2") and int(tokens.max()) < source.vocab_size
    assert hashlib.sha256(tokens.tobytes()).hexdigest()[:16] == source.identity["hash"] == "666b41f46a48813b"
    assert source.entropy_nats_per_token is None and 2.0 < source.bytes_per_token < 2.3
    train, val = source.split("train"), source.split("val")
    assert len(train) + len(val) == len(tokens) and (val == 0).sum() >= 40  # tens of whole held-out files
    tokenizers = pytest.importorskip("tokenizers", reason="the 'tokenizers' package is not installed")
    tokenizer = tokenizers.Tokenizer.from_file(str(PyCodeSource.tokenizer_path()))
    assert tokenizer.get_vocab_size() == source.vocab_size and tokenizer.token_to_id("<|file|>") == 0
    files = np.flatnonzero(val == 0)
    text = tokenizer.decode(val[files[0] + 1 : files[1]].tolist())  # one held-out file, decoded
    assert "def " in text or "import " in text or "class " in text
    assert tokenizer.encode(text).ids == val[files[0] + 1 : files[1]].tolist()  # the committed BPE made the ids


def test_pycode_bytes_is_the_same_text_split_at_the_same_place():
    bpe, raw = get_source("pycode"), get_source("pycode:bytes")
    assert raw.vocab_size == 256 and raw.bytes_per_token == 1.0 and raw.identity["level"] == "bytes"
    assert raw.identity["hash"] == bpe.identity["hash"]  # one frozen corpus, two views
    tokenizers = pytest.importorskip("tokenizers", reason="the 'tokenizers' package is not installed")
    tokenizer = tokenizers.Tokenizer.from_file(str(PyCodeSource.tokenizer_path()))
    val_bpe, val_raw = bpe.split("val"), raw.split("val")
    assert val_raw[0] == 0 and val_bpe[0] == 0  # both splits start at the same held-out file
    files = np.flatnonzero(val_bpe == 0)
    first = tokenizer.decode(val_bpe[1 : files[1]].tolist()).encode()
    assert bytes(val_raw[1 : 1 + len(first)]) == first and val_raw[1 + len(first)] == 0
    assert len(raw.split("train")) + len(val_raw) == PYCODE_BYTES + int((bpe._tokens() == 0).sum())


def test_pycode_rejects_options_and_a_corrupt_corpus(tmp_path, monkeypatch):
    with pytest.raises(ScalingDataError, match="use pycode or pycode:bytes"):
        get_source("pycode:vocab=256")
    from pytest_scaling.data import pycode

    (tmp_path / "pycode.tokens.xz").write_bytes(b"not xz")
    monkeypatch.setattr(pycode, "CORPORA", tmp_path)
    with pytest.raises(ScalingDataError, match="cannot read"):
        PyCodeSource()._tokens()


def test_text_identity_follows_content_not_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("hello world " * 20)
    (tmp_path / "a" / "y.txt").write_text("second file " * 20)
    (tmp_path / "a" / ".hidden").write_text("ignored")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("hello world " * 20)
    (tmp_path / "b" / "y.txt").write_text("second file " * 20)
    a, b = ByteSource(tmp_path / "a"), ByteSource(tmp_path / "b")
    assert a.identity == b.identity
    assert bytes(a._tokens()) == ("hello world " * 20 + "second file " * 20).encode()  # sorted, no hidden
    (tmp_path / "b" / "y.txt").write_text("changed file" * 20)
    assert ByteSource(tmp_path / "b").identity["hash"] != a.identity["hash"]
    single = get_source(f"text:{tmp_path / 'a' / 'x.txt'}:max_bytes=100")
    assert single.identity["bytes"] == 100 and single.bytes_per_token == 1.0


def test_bin_source(tmp_path):
    path = tmp_path / "train.bin"
    tokens = (np.arange(5000) * 7 % 1000).astype(np.uint16)
    tokens.tofile(path)
    source = get_source(f"bin:{path}:vocab=1000")
    assert isinstance(source, BinSource) and source.vocab_size == 1000 and source.bytes_per_token is None
    assert source.identity["vocab"] == 1000
    assert np.array_equal(np.asarray(source._tokens()), tokens)
    batch = next(source.train_batches(2, 16, seed=0))
    assert batch.dtype == torch.int64 and batch.max() < 1000
    with pytest.raises(ScalingDataError, match="vocab=500"):
        BinSource(path, vocab=500).identity  # noqa: B018
    with pytest.raises(ScalingDataError, match="needs the vocab size"):
        get_source(f"bin:{path}")


def test_hf_dataset_from_disk(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the 'datasets' package is not installed")
    text = datasets.Dataset.from_dict({"text": ["first row of text", "second row"] * 50})
    text.save_to_disk(str(tmp_path / "text"))
    source = get_source(f"hf:{tmp_path / 'text'}")
    assert source.vocab_size == 256 and source.bytes_per_token == 1.0
    assert bytes(source._tokens()[:28]) == b"first row of text\nsecond row"
    ids = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 100}),
         "test": datasets.Dataset.from_dict({"input_ids": [[5, 6]] * 100})}
    )  # fmt: skip
    ids.save_to_disk(str(tmp_path / "ids"))
    train, test = get_source(f"hf:{tmp_path / 'ids'}"), get_source(f"hf:{tmp_path / 'ids'}:test:vocab=10")
    assert train.vocab_size == 5 and test.vocab_size == 10 and train.bytes_per_token is None
    assert train.identity["hash"] != test.identity["hash"]
    with pytest.raises(ScalingDataError, match="no split 'valid'"):
        get_source(f"hf:{tmp_path / 'ids'}:valid")


# -------------------------------------------------------------------------------------------- specs


def test_get_source_specs_and_cache():
    assert get_source() is get_source("topics") is get_source(None)
    assert isinstance(get_source(), TopicSource) and isinstance(get_source("synthetic"), SyntheticSource)
    custom = SyntheticSource(docs=4, val_docs=4)
    assert get_source(custom) is custom
    assert isinstance(custom, DataSource)
    small = get_source("synthetic:vocab=32,lags=4/8,lengths=3,docs=16,val_docs=4")
    assert small.vocab_size == 32 and small.lags == (4, 8) and small.n_markers == 2
    assert small.identity["hash"] != get_source(SMALL).identity["hash"]
    assert (
        get_source("synthetic:seed=1,docs=16,val_docs=4").identity["hash"]
        != get_source("synthetic:docs=16,val_docs=4").identity["hash"]
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("wikipedia", "unknown data spec 'wikipedia'"),
        ("synthetic:vocab=abc", "option vocab: expected a number, got 'abc'"),
        ("synthetic:vocab=1.5", "option vocab: expected an integer >= 0, got '1.5'"),
        ("synthetic:lags=8/x", "option lags: expected integers >= 0 separated by '/'"),
        ("synthetic:vocab", "bad option 'vocab'"),
        ("text:/no/such/file.txt", "/no/such/file.txt"),
        ("bin:/no/such.bin:vocab=5", "/no/such.bin"),
        ("text:", "needs a path"),
        ("stdlib:max_bytes=0", "max_bytes"),
        (3, "must be a string"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ScalingDataError, match=message):
        get_source(spec)


def test_one_table_of_source_kinds_drives_the_error_and_the_cli_help(capsys):
    """Every kind in ``SOURCES`` builds through its own entry, and its syntax appears in the unknown-spec error
    and in ``pytest-scaling train --help``; reading the table loads no source module."""
    from pytest_scaling.cli import build_parser
    from pytest_scaling.data import SOURCES

    with pytest.raises(ScalingDataError) as unknown:
        get_source("wikipedia")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for kind in SOURCES.values():
        assert kind.usage in str(unknown.value) and kind.usage in help_text
    assert isinstance(get_source("topics:docs=8,val_docs=8"), TopicSource)
    code = ("import sys, pytest_scaling.data.spec as s; s.usage(); print(sorted(m for m in sys.modules if 'torch' "
            "in m or m.startswith('pytest_scaling.data.') and m != 'pytest_scaling.data.spec'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
