"""Run identity: code across a user's modules (normalised source), and the built model's fingerprint."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys

import pytest
import torch

from pytest_scaling.errors import ScalingDataError
from pytest_scaling.training import identity
from pytest_scaling.training.identity import code_identity, probe_model
from pytest_scaling.training.model import GPT, ModelSpec, build_reference
from tests.helpers import write_package

SPEC = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)

@pytest.fixture
def package(tmp_path, monkeypatch):
    """Writes the multi-module package ``userpkg`` (with edits), imports it afresh, returns its factory module."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edits within a second must not meet stale bytecode

    def load(**edits: tuple[str, str]):
        write_package(tmp_path, **edits)
        for name in [m for m in sys.modules if m == "userpkg" or m.startswith("userpkg.")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module("userpkg.factory")

    yield load
    for name in [m for m in sys.modules if m == "userpkg" or m.startswith("userpkg.")]:
        del sys.modules[name]


CHANGES = {
    "activation in a sibling module's layer": {"layers.py": ("functional.gelu", "functional.relu")},
    "constant of another module": {"config.py": ("HIDDEN = 2", "HIDDEN = 3")},
    "base class in a third module": {"base.py": ("return 1.0", "return 2.0")},
    "the model class": {"net.py": ("self.embed(idx)", "self.embed(idx) * 2")},
    "the factory's default argument": {"factory.py": ("mult=1", "mult=2")},
}

NO_CHANGES = {
    "a comment": {"layers.py": ("import torch", "import torch  # the tensor library")},
    "a docstring": {"factory.py": ("Build the net.", "Build the network, documented.")},
    "formatting": {"net.py": ("Layer(spec.width * mult)", "Layer(\n            spec.width*mult)")},
    "an unrelated function in the factory's module": {"factory.py": ("return 1", "return 2")},
    "an unrelated module": {"other.py": ("VALUE = 1", "VALUE = 2")},
    "an unused constant": {"config.py": ('ACT = "gelu"', 'ACT = "relu"')},
}


@pytest.mark.parametrize("edit", CHANGES, ids=list(CHANGES))
def test_edits_that_change_the_model_change_the_identity(package, edit):
    before = code_identity(package().build)
    assert code_identity(package().build) == before  # stable
    assert code_identity(package(**CHANGES[edit]).build) != before


@pytest.mark.parametrize("edit", NO_CHANGES, ids=list(NO_CHANGES))
def test_edits_that_cannot_change_the_model_keep_the_identity(package, edit):
    before = code_identity(package().build)
    assert code_identity(package(**NO_CHANGES[edit]).build) == before


def test_partial_arguments_and_callable_instances(package):
    module = package()
    build, builder = module.build, code_identity(module.Builder(2))
    assert code_identity(functools.partial(build, mult=2)) != code_identity(functools.partial(build, mult=3))
    assert code_identity(functools.partial(build)) != code_identity(build)
    assert builder != code_identity(module.Builder(3)) and builder.startswith("userpkg.factory.Builder@")
    edited = package(**CHANGES["activation in a sibling module's layer"])
    assert code_identity(edited.Builder(2)) != builder


def test_installed_code_enters_as_its_version():
    walk = identity._Walk()
    walk.visit(build_reference)
    assert f"torch=={torch.__version__}" in walk.external
    assert not any("def torch." in part for part in walk.parts)  # torch's source is not read
    assert code_identity("gpt") == code_identity(build_reference)


def test_fingerprint_is_the_same_in_another_process():
    here = probe_model("gpt", SPEC)
    code = ("from pytest_scaling.training.identity import probe_model; "
            "from pytest_scaling.training.model import ModelSpec; "
            "print(probe_model('gpt', ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)).fingerprint)")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert there == here.fingerprint
    assert here.params.non_embedding == 16 * (4 * 16 + 2 * 4 * 16 + 2) + 16


def test_fingerprint_sees_what_the_code_does_not(monkeypatch):
    before = probe_model("gpt", SPEC).fingerprint
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    assert probe_model("gpt", SPEC).fingerprint == before
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)  # restored
    monkeypatch.setattr(torch.nn.functional, "gelu", torch.nn.functional.silu)  # a monkey-patch elsewhere
    assert probe_model("gpt", SPEC).fingerprint != before
    monkeypatch.undo()
    assert probe_model("gpt", ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32, rope=True)).fingerprint != before


class _Flat(torch.nn.Module):
    def __init__(self, classes: int, flat: bool = False) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(64, classes)
        self.flat = flat

    def forward(self, idx):
        out = self.embed(idx)
        return out.sum(-1) if self.flat else out


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda spec: None, "returned NoneType, not a torch.nn.Module"),
        (lambda spec: torch.nn.ReLU(), "built a ReLU without parameters"),
        (lambda spec: _Flat(80), r"logits \[2, 16, 80\]; expected \[2, 16, 64\]"),
        (lambda spec: _Flat(40), r"logits \[2, 16, 40\]; expected \[2, 16, 64\]"),
        (lambda spec: _Flat(64, flat=True), r"logits \[2, 16\]; expected \[2, 16, 64\]"),
        (lambda spec: GPT(ModelSpec(width=16, depth=1, vocab_size=64, seq_len=8)), "forward pass .* failed"),
    ],
    ids=["None", "no parameters", "more classes", "fewer classes", "[B, T] logits", "forward fails"],
)
def test_probe_rejects_models_that_cannot_be_trained(factory, message):
    with pytest.raises(ScalingDataError, match=message):
        probe_model(factory, SPEC)


class _Uncomposed(GPT):
    """The ``h = block(x)`` bug: every block reads the embedding, only the last one's output is used."""

    def forward(self, idx):
        x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
        h = x
        for block in self.blocks:
            h = block(x)
        return torch.nn.functional.linear(self.ln_f(h), self.wte.weight)


class _Routed(GPT):
    """Two 'experts' (MLPs) of which a router picks one per batch: the other gets no gradient this batch."""

    def __init__(self, spec, exempt=()):
        super().__init__(spec)
        self.experts = torch.nn.ModuleList([torch.nn.Linear(spec.width, spec.width) for _ in range(2)])
        if exempt:
            self.scaling_unused_parameters = exempt

    def forward(self, idx):
        x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = x + self.experts[int(idx[0, 0]) % 2](x)
        return torch.nn.functional.linear(self.ln_f(x), self.wte.weight)


def test_probe_fails_parameters_that_get_no_gradient():
    deep = ModelSpec(width=16, depth=3, vocab_size=64, seq_len=32)
    with pytest.raises(ScalingDataError, match=r"_Uncomposed at w16-d3: 12 of 21 trainable parameter tensors get no "
                       r"gradient from the loss \(blocks\.0\.ln1\.weight, .* and \d+ more\): .* h = block\(x\)"):
        probe_model(_Uncomposed, deep)
    probe_model(_Uncomposed, ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32))  # one block: all used
    with pytest.raises(ScalingDataError, match=r"_Routed at w16-d1: 2 of \d+ trainable parameter tensors get no "
                       r"gradient from the loss \(experts\.(\d)\.weight, experts\.\1\.bias\)"):
        probe_model(_Routed, SPEC)
    probe_model(functools.partial(_Routed, exempt=("experts.",)), SPEC)  # a prefix ending in '.'
    probe_model(functools.partial(_Routed, exempt=("experts.0.weight", "experts.0.bias", "experts.1.weight",
                                                   "experts.1.bias")), SPEC)  # exact names  # fmt: skip
    frozen = GPT(SPEC)
    frozen.spare = torch.nn.Linear(4, 4).requires_grad_(False)  # frozen parameters need no gradient
    probe_model(lambda spec: frozen, SPEC)


def test_a_long_chain_of_calls_is_followed_to_its_end(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def chain_identity(last: str) -> str:
        calls = "".join(f"def f{i}(spec):\n    return f{i + 1}(spec)\n\n\n" for i in range(30))
        (tmp_path / "chain.py").write_text(f"{calls}def f30(spec):\n    return {last}\n")
        sys.modules.pop("chain", None)
        importlib.invalidate_caches()
        return code_identity(importlib.import_module("chain").f0)

    try:
        assert chain_identity("spec") != chain_identity("spec * 2")
    finally:
        sys.modules.pop("chain", None)
