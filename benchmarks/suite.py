"""The shipped suite's shared settings: one ladder, one budget rule, one data source for every test."""

SIZES = [  # non-embedding parameters 3.1k .. 98.6k (32x), context 128
    dict(width=16, depth=1),
    dict(width=32, depth=1),
    dict(width=32, depth=2),
    dict(width=48, depth=2),
    dict(width=64, depth=2),
]
SWEEP = dict(tokens_per_param=20, data="topics")  # Chinchilla's 20 tokens per parameter; the default language
REFERENCE_SEEDS = [0, 1]
