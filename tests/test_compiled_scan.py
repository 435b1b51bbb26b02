"""The compiled CPU loops of LARNNScan against the reference and against the Python loops.

The float64 tests of test_model.py run the Python loops; these run float32, which takes the
compiled loops. Skipped with the build error where they cannot be built, unless
LARNN_COMPILED_SCAN=1 (as in CI), where a failed build is an error.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_model import OPTION_GRID, gradients, make_model
from torch.utils._pytree import tree_map_only

from larnn.model import LARNN, InferenceKnobs, LARNNConfig
from larnn.reference import reference_stack
from larnn.scan import compiled as compiled_scan
from larnn.scan import function as scan_function


@pytest.fixture(autouse=True)
def compiled_loops():
    if not compiled_scan.enabled():
        pytest.skip(f"the compiled scan could not be built: {compiled_scan.build_error()}")


def float32_pair(**overrides) -> tuple[LARNN, LARNN]:
    """The same random model in float64 (for the reference) and float32 (compiled)."""
    reference = make_model(**overrides)
    compiled = make_model(**overrides).float()
    compiled.load_state_dict({k: v.float() for k, v in reference.state_dict().items()})
    return reference, compiled


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_compiled_equals_reference(options, train):
    """Outputs, attention and every gradient of the float32 compiled loops against the
    float64 per-step reference, over every option, with 19 samples (a partial lane block)."""
    reference, compiled = float32_pair(**options)
    reference.train(train)
    compiled.train(train)
    x = torch.randn(7, 19, 5, dtype=torch.float64)

    def run(net):
        def loss_fn(x):
            output, _, record = net(x, return_attention=True)
            return output, record.weights

        return loss_fn

    got = gradients(compiled, run(compiled), x.float())
    want = gradients(reference, lambda x: reference_stack(reference, x), x)
    assert got.keys() == want.keys()
    for name in got:
        torch.testing.assert_close(got[name].double(), want[name], atol=2e-4, rtol=1e-3, msg=name)
    with torch.no_grad():
        output, _, record = compiled(x.float(), return_attention=True)
        expected, expected_weights = reference_stack(reference, x)
    # float32 against float64: the Python loops in float32 differ by up to 1e-5 here.
    torch.testing.assert_close(output.double(), expected, atol=5e-5, rtol=0)
    for got_w, want_w in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got_w.double(), want_w, atol=5e-5, rtol=0)


# Hidden steps for 9 steps at window 4, per sample: none; two; every slot of step 8's window
# (1 and 4..7, so step 8 attends to nothing, as step 2 does); and every step (a sample that
# attends to nothing at all). A batch of 19 holds each at least four times.
HIDDEN_ROWS = ((), (2, 3), (1, 4, 5, 6, 7), tuple(range(9)))
HIDDEN_CASES = {
    "whole-batch": (1, 4, 5, 6, 7),
    "per-sample": tuple(HIDDEN_ROWS[b % len(HIDDEN_ROWS)] for b in range(19)),
}


@pytest.mark.parametrize(
    "hidden, train",
    [("whole-batch", False), ("whole-batch", True), ("per-sample", False)],
    ids=["whole-batch-eval", "whole-batch-train", "per-sample-eval"],
)
@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_compiled_with_hidden_steps_equals_reference(options, hidden, train):
    """Hidden steps in the compiled loops: outputs, attention and every gradient against the
    float64 reference, which leaves hidden slots out of its softmax (per sample, it runs each
    sample alone: eval only, where batch norm does not mix samples)."""
    reference, compiled = float32_pair(**options)
    reference.train(train)
    compiled.train(train)
    knobs = InferenceKnobs(hidden_steps=HIDDEN_CASES[hidden])
    x = torch.randn(9, 19, 5, dtype=torch.float64)

    def fast(x):
        output, _, record = compiled(x, knobs=knobs, return_attention=True)
        return output, record.weights

    got = gradients(compiled, fast, x.float())
    want = gradients(reference, lambda x: reference_stack(reference, x, knobs), x)
    assert got.keys() == want.keys()
    for name in got:
        torch.testing.assert_close(got[name].double(), want[name], atol=2e-4, rtol=1e-3, msg=name)
    with torch.no_grad():
        output, _, record = compiled(x.float(), knobs=knobs, return_attention=True)
        expected, expected_weights = reference_stack(reference, x, knobs)
    torch.testing.assert_close(output.double(), expected, atol=5e-5, rtol=0)
    for got_w, want_w in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got_w.double(), want_w, atol=5e-5, rtol=0)
    if hidden == "per-sample":  # the samples hiding every step attend to nothing: exactly 0
        nothing = [b for b in range(19) if HIDDEN_CASES[hidden][b] == HIDDEN_ROWS[-1]]
        assert all(torch.all(w[nothing] == 0) for w in record.weights)


@pytest.mark.parametrize("hidden", HIDDEN_CASES)
def test_hidden_steps_take_the_compiled_loops(monkeypatch, hidden):
    """With hidden steps, float32 on the CPU runs the compiled forward and backward, handed
    which slots are visible; the Python loops, which would also get it right, never run."""

    def refuse(*args, **kwargs):
        raise AssertionError("a Python loop ran")

    monkeypatch.setattr(scan_function, "python_scan_forward", refuse)
    monkeypatch.setattr(scan_function, "python_scan_backward", refuse)
    net = LARNN(LARNNConfig(input_size=5, hidden_size=12, heads=3, window=4)).eval()
    x = torch.randn(9, 19, 5, requires_grad=True)
    knobs = InferenceKnobs(hidden_steps=HIDDEN_CASES[hidden])

    def run():
        output, _ = net(x, knobs=knobs)
        output.sum().backward()

    calls = record_op_calls(run)
    assert [op for op, _, _ in calls] == [
        torch.ops.larnn.scan_forward.default,
        torch.ops.larnn.scan_backward.default,
    ]
    batch_columns = 1 if hidden == "whole-batch" else 19
    for _, _, kwargs in calls:
        assert kwargs["visible"].shape == (9, 4, batch_columns)
    assert torch.isfinite(x.grad).all()


def run_both(monkeypatch, net: LARNN, x: torch.Tensor, seed: int = 0, chunks=None, **kwargs):
    """Output, attention weights, gradients and buffers from the compiled then the Python
    loops, from the same weights, buffers and random seed; x is run in `chunks` (lengths along
    time) with the state carried, or whole."""
    start = {k: v.clone() for k, v in net.state_dict().items()}
    return [
        run_loop(monkeypatch, net, start, x, switch, seed, chunks, **kwargs)
        for switch in ("1", "0")
    ]


def run_loop(monkeypatch, net, start, x, switch: str, seed, chunks, **kwargs) -> tuple:
    """One run of `run_both` with LARNN_COMPILED_SCAN=switch, in net's and x's dtype."""
    monkeypatch.setenv(compiled_scan.ENV_SWITCH, switch)
    net.load_state_dict(start)
    net.zero_grad(set_to_none=True)
    x_leaf = x.clone().requires_grad_()
    torch.manual_seed(seed)
    state, outputs, weights = None, [], []
    for part in x_leaf.split(chunks or [len(x)]):
        output, state, record = net(part, state, return_attention=True, **kwargs)
        outputs.append(output)
        weights += record.weights
    output = torch.cat(outputs)
    loss = (output * output.cos()).sum() + state.memory.sum() + state.c.sum()
    loss = loss + sum((w * w.sin()).sum() for w in weights)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    return output, weights, {**grads, "x": x_leaf.grad}, buffers


def assert_close_to_scale(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    """Equal up to float32 rounding of sums over the batch: 1e-4 of the largest entry."""
    tolerance = 1e-4 * want.abs().max().item()
    assert (got - want).abs().max().item() <= tolerance, name


@pytest.mark.parametrize(
    "options",
    [
        dict(kv_norm="batch", hidden_norm="batch", attention_dropout=0.3),
        dict(kv_norm="layer", hidden_norm="layer", positional_encoding=True, mode="layer"),
        dict(kv_activation="tanh", query_activation="relu", stacked_residual=True),
    ],
)
def test_compiled_equals_python_loops_in_training(monkeypatch, options):
    """Same dropout masks (drawn before either loop), same running statistics of batch norm
    after the step-by-step updates, same gradients, at a batch of 37 (two and a bit blocks)."""
    torch.manual_seed(0)
    net = LARNN(
        LARNNConfig(input_size=4, hidden_size=24, num_layers=2, heads=4, window=5, **options)
    )
    net.train()
    compiled, python = run_both(monkeypatch, net, torch.randn(9, 37, 4), seed=3)
    torch.testing.assert_close(compiled[0], python[0], atol=2e-5, rtol=0)
    for got, want in zip(compiled[1], python[1], strict=True):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
    for name in python[2]:
        assert_close_to_scale(compiled[2][name], python[2][name], name)
    for name, value in python[3].items():  # running_mean, running_var, num_batches_tracked
        torch.testing.assert_close(compiled[3][name], value, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize(
    "knobs",
    [
        InferenceKnobs(window=2),
        InferenceKnobs(window=7),
        InferenceKnobs(kv_activation="none"),
        InferenceKnobs(head_mask=torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])),
        InferenceKnobs(hidden_steps=(0, 3, 4, 5, 6, 10), window=3),
        InferenceKnobs(hidden_steps=((1, 2), (), tuple(range(12)), (4, 5, 6, 7), (11,))),
    ],
)
def test_compiled_knobs_equal_python_loops(monkeypatch, knobs):
    torch.manual_seed(0)
    config = LARNNConfig(
        input_size=4, hidden_size=24, num_layers=2, heads=4, window=4, max_window=8
    )
    net = LARNN(config).eval()
    compiled, python = run_both(monkeypatch, net, torch.randn(12, 5, 4), knobs=knobs)
    torch.testing.assert_close(compiled[0], python[0], atol=2e-5, rtol=0)
    for name in python[2]:
        assert_close_to_scale(compiled[2][name], python[2][name], name)


def test_compiled_chunked_equals_whole():
    """Outputs, and gradients through the carried state (h, c and the queue's keys and
    values, kept by block of batch columns) into earlier chunks, at a batch of 19."""
    torch.manual_seed(0)
    config = LARNNConfig(
        input_size=3, hidden_size=16, num_layers=2, heads=2, window=3, positional_encoding=True
    )
    net = LARNN(config).eval()
    x = torch.randn(11, 19, 3)

    def chunked(x):
        state, parts = None, []
        for chunk in x.split([4, 1, 6]):
            output, state = net(chunk, state)
            parts.append(output)
        return torch.cat(parts) + state.memory.sum() + state.c.sum(), []

    def whole(x):
        output, state = net(x)
        return output + state.memory.sum() + state.c.sum(), []

    with torch.no_grad():
        torch.testing.assert_close(chunked(x)[0], whole(x)[0], atol=1e-6, rtol=1e-6)
    got, want = gradients(net, chunked, x), gradients(net, whole, x)
    for name in want:
        assert_close_to_scale(got[name], want[name], name)


def test_float32_on_the_cpu_takes_the_compiled_loop(monkeypatch):
    """Where the Python forward loop cannot run, float32 still works: the compiled one ran."""

    def refuse(*args, **kwargs):
        raise AssertionError("the Python loop ran")

    monkeypatch.setattr(scan_function, "python_scan_forward", refuse)
    net = LARNN(LARNNConfig(input_size=3, hidden_size=8, heads=2, window=3)).train()
    output, _ = net(torch.randn(5, 4, 3))
    output.sum().backward()
    with pytest.raises(AssertionError, match="Python loop"):
        net.double()(torch.randn(5, 4, 3, dtype=torch.float64))


def test_switch_off_takes_the_python_loop(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the compiled loop ran")

    monkeypatch.setenv(compiled_scan.ENV_SWITCH, "0")
    monkeypatch.setattr(compiled_scan, "forward", refuse)
    net = LARNN(LARNNConfig(input_size=3, hidden_size=8, heads=2, window=3)).eval()
    output, _ = net(torch.randn(5, 4, 3))
    assert torch.isfinite(output).all()


def test_failed_build_warns_and_falls_back(monkeypatch):
    def no_compiler():
        raise OSError("c++: command not found")

    monkeypatch.setattr(compiled_scan, "_loaded", False)
    monkeypatch.setattr(compiled_scan, "_build_error", None)
    monkeypatch.setattr(compiled_scan, "build", no_compiler)
    monkeypatch.delenv(compiled_scan.ENV_SWITCH, raising=False)
    net = LARNN(LARNNConfig(input_size=3, hidden_size=8, heads=2, window=3)).eval()
    with pytest.warns(RuntimeWarning, match="c\\+\\+: command not found"):
        output, _ = net(torch.randn(5, 4, 3))
    assert torch.isfinite(output).all()
    monkeypatch.setenv(compiled_scan.ENV_SWITCH, "1")
    with pytest.raises(RuntimeError, match="LARNN_COMPILED_SCAN=1"):
        net(torch.randn(5, 4, 3))


def test_batch_norm_training_on_one_sample_raises_torch_error():
    net = LARNN(LARNNConfig(input_size=3, hidden_size=8, heads=2, window=3, kv_norm="batch"))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        net.train()(torch.randn(5, 1, 3))


def test_compiled_many_blocks_in_eval_equal_python_loops(monkeypatch):
    """70 samples: four full blocks of 16 columns and a block of 6; a window that wraps the
    eval ring of K + 1 slots many times over."""
    torch.manual_seed(0)
    config = LARNNConfig(
        input_size=4, hidden_size=24, num_layers=2, heads=6, window=3, positional_encoding=True
    )
    net = LARNN(config).eval()
    x = torch.randn(17, 70, 4)
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(compiled_scan.ENV_SWITCH, switch)
        with torch.no_grad():
            results.append(net(x, return_attention=True))
    (out, state, record), (want_out, want_state, want_record) = results
    torch.testing.assert_close(out, want_out, atol=2e-5, rtol=0)
    torch.testing.assert_close(state.memory, want_state.memory, atol=2e-5, rtol=0)
    for got, want in zip(record.weights, want_record.weights, strict=True):
        torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


def test_compiled_op_refuses_what_it_would_misread():
    compiled_scan.build()
    H, B, T, K = 8, 4, 2, 3
    arguments = dict(
        x=torch.zeros(T, 3, B),
        h0=torch.zeros(H, B),
        c0=torch.zeros(H, B),
        kv=torch.zeros(1, K + T, 2 * H, compiled_scan.LANES),
        filled=0,
        window=K,
        w_xh=torch.zeros(5 * H, 3 + H + 1),
        w_a=torch.zeros(4 * H, H),
        w_kv=torch.zeros(2 * H, H + 1),
        pos_k=None,
        pos_v=None,
        head_mask=None,
        visible=None,
        drops=None,
        heads=2,
        query_activation=compiled_scan.ACTIVATION_CODES["elu"],
        kv_activation=compiled_scan.ACTIVATION_CODES["elu"],
        kv_norm_kind=compiled_scan.NO_NORM,
        kv_norm_params=None,
        kv_norm_eps=0.0,
        h_norm_kind=compiled_scan.NO_NORM,
        h_norm_params=None,
        h_norm_eps=0.0,
        hs=torch.zeros(T, H, B),
        cs=torch.zeros(T, H, B),
        acts=None,
        queries=None,
        attended=None,
        recorded=None,
        kv_stats=None,
        h_stats=None,
    )
    torch.ops.larnn.scan_forward(**arguments)  # as given, accepted
    with pytest.raises(RuntimeError, match="contiguous float32 CPU tensors"):
        torch.ops.larnn.scan_forward(**{**arguments, "x": torch.zeros(T, 3, B).double()})
    for visible in (
        torch.ones(T, K, B),  # float, not bool
        torch.ones(T, K, 2, dtype=torch.bool),  # neither B nor 1 batch columns
        torch.ones(T, K + 1, B, dtype=torch.bool),  # a window of K + 1 slots
        torch.ones(K, T, B, dtype=torch.bool).transpose(0, 1),  # not contiguous
    ):
        with pytest.raises(RuntimeError, match="visible as a contiguous bool CPU tensor"):
            torch.ops.larnn.scan_forward(**{**arguments, "visible": visible})


def record_op_calls(run) -> list[tuple]:
    """(op, args, kwargs) of each call of the compiled ops while run() runs, in order, the
    tensors copied as they were passed (before the op wrote into any), requires_grad kept."""
    calls = []

    def copy(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().clone().requires_grad_(tensor.requires_grad)

    def recording(op: torch._ops.OpOverloadPacket):
        def call(*args, **kwargs):
            calls.append((op.default, *tree_map_only(torch.Tensor, copy, (args, kwargs))))
            return op(*args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in ("scan_forward", "scan_backward"):
            patch.setattr(torch.ops.larnn, name, recording(getattr(torch.ops.larnn, name)))
        run()
    return calls


OPCHECK_CASES = {
    # Training with every optional tensor: dropout masks, positional keys and values, a head
    # mask, hidden steps per sample, recorded weights and their gradient, both norms' batch
    # statistics and gradients.
    "train-all": (
        dict(kv_norm="batch", hidden_norm="batch", positional_encoding=True, attention_dropout=0.3),
        True,
        InferenceKnobs(head_mask=(1.0, 0.0), hidden_steps=[(b % 4, 2) for b in range(19)]),
        True,
    ),
    # Eval and no optional tensor but the layer norm's parameters and gradient.
    "eval-fewest": (dict(kv_norm="layer", hidden_norm="none"), False, None, False),
    # Eval with steps hidden from the whole batch: visible has one batch column.
    "eval-hidden": (dict(), False, InferenceKnobs(hidden_steps=(1, 2)), False),
}


@pytest.mark.parametrize("case", OPCHECK_CASES)
def test_ops_pass_opcheck(case):
    """torch.library.opcheck on both ops with the arguments a model passes them, in a forward
    that keeps what backward needs, its backward, and a forward under no_grad that keeps
    nothing: the schema declares every tensor the op writes (test_schema runs the op and fails
    on a write to an argument not declared Tensor(a!)), the fake kernel, the autograd
    registration (w_a comes in requiring grad, but under no_grad), and the op under
    AOTAutograd (functionalized, dynamic shapes)."""
    options, train, knobs, attention = OPCHECK_CASES[case]
    torch.manual_seed(0)
    config = LARNNConfig(input_size=3, hidden_size=8, heads=2, window=3, **options)
    net = LARNN(config).train(train)
    x = torch.randn(5, 19, 3, requires_grad=True)

    def run():
        output, *_, record = net(x, knobs=knobs, return_attention=True)
        weights = record.weights if attention else []  # else no gradient of the weights
        (output.sum() + sum(w.sum() for w in weights)).backward()
        with torch.no_grad():
            net(x, knobs=knobs)

    calls = record_op_calls(run)
    assert [op for op, _, _ in calls] == [
        torch.ops.larnn.scan_forward.default,
        torch.ops.larnn.scan_backward.default,
        torch.ops.larnn.scan_forward.default,
    ]
    if case == "train-all":  # every optional tensor of forward and backward is given
        assert None not in [*calls[0][2].values(), *calls[1][2].values()]
    if case.endswith("hidden"):
        assert calls[0][2]["visible"].shape == (5, 3, 1)
    # Under grad a weight comes in requiring grad, which test_autograd_registration needs (it
    # skips a call where no tensor does, as the no_grad forward's).
    assert calls[0][2]["w_a"].requires_grad and calls[1][2]["w_a"].requires_grad
    for op, args, kwargs in calls:
        torch.library.opcheck(op, args, kwargs)


def random_case(seed: int) -> tuple[LARNNConfig, bool, int, tuple[int, int], InferenceKnobs]:
    """A random configuration, mode, batch size, two chunk lengths and knobs."""
    rng = random.Random(seed)
    heads, head_dim, window = rng.choice([1, 2, 3, 4]), rng.choice([1, 2, 5]), rng.choice([1, 2, 5])
    config = LARNNConfig(
        input_size=rng.choice([1, 3]),
        hidden_size=heads * head_dim,
        num_layers=rng.choice([1, 2]),
        heads=heads,
        window=window,
        max_window=window + rng.choice([0, 2]),
        mode=rng.choice(["residual", "layer"]),
        positional_encoding=rng.random() < 0.5,
        kv_activation=rng.choice(["elu", "relu", "tanh", "none"]),
        kv_norm=rng.choice(["batch", "layer", "none"]),
        hidden_norm=rng.choice(["batch", "layer", "none"]),
        query_activation=rng.choice(["elu", "relu", "tanh", "none"]),
        stacked_residual=rng.random() < 0.5,
    )
    train, batch = rng.random() < 0.5, rng.choice([2, 15, 16, 17, 33])
    mask = (torch.rand(heads, generator=torch.Generator().manual_seed(seed)) > 0.3).float()
    window = rng.choice([None, 1, config.max_window])
    chunks = (rng.choice([1, 2, 4]), rng.choice([1, 3, 6]))
    # Hidden steps (absolute time, so across the two chunks) from seed 20 on: none, for the
    # whole batch, or per sample, some samples hiding every step. Drawn last, so that seeds
    # 0..19 are the cases they were before hidden steps reached the compiled loops.
    steps = range(sum(chunks))
    hidden = [None, rng.sample(steps, rng.randint(1, len(steps)))]
    hidden.append([rng.sample(steps, rng.randint(0, len(steps))) for _ in range(batch)])
    knobs = InferenceKnobs(
        window=window,
        head_mask=mask if seed % 3 == 0 else None,
        hidden_steps=hidden[seed % 3 if seed >= 20 else 0],
    )
    return config, train, batch, chunks, knobs


@pytest.mark.parametrize("seed", range(40))
def test_compiled_equals_python_loops_on_random_cases(monkeypatch, seed):
    """Random configurations, run in two chunks with the state carried between them, in train
    or eval mode, with knobs: outputs, attention and gradients of both loops agree, gradients
    to 1e-3 of their largest entry or, where rounding is amplified, as near float64 as the
    Python loop. (It found running statistics updated in a way that broke the backward of a
    batch norm applied to the carried queue.)"""
    assert_loops_agree(monkeypatch, seed, *random_case(seed))


@pytest.mark.parametrize("seed", range(24))
def test_compiled_equals_python_loops_on_one_series(monkeypatch, seed):
    """A single series (B = 1, the app's case) takes the compiled forward's matrix-vector
    products and one-column attention; the random cases above, cut to one sample, in
    training where no batch norm needs a batch."""
    config, train, _, chunks, knobs = random_case(seed)
    train = train and "batch" not in (config.kv_norm, config.hidden_norm)
    hidden = knobs.hidden_steps
    if hidden and isinstance(hidden[0], tuple):  # per sample: the first sample's
        knobs = dataclasses.replace(knobs, hidden_steps=hidden[:1])
    assert_loops_agree(monkeypatch, seed, config, train, 1, chunks, knobs)


def assert_loops_agree(monkeypatch, seed, config, train, batch, chunks, knobs) -> None:
    """Both loops on one random input: outputs and attention to 1e-4, gradients as above."""
    torch.manual_seed(seed)
    net = LARNN(config).train(train)
    x = torch.randn(sum(chunks), batch, config.input_size)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    results = run_both(monkeypatch, net, x, seed=seed, chunks=chunks, knobs=knobs)
    (output, weights, grads, _), (want_output, want_weights, want_grads, _) = results
    torch.testing.assert_close(output, want_output, atol=1e-4, rtol=0)
    for got, want in zip(weights, want_weights, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert grads.keys() == want_grads.keys()
    exact = None  # the Python loop's gradients in float64, when needed
    for name in want_grads:
        tolerance = 1e-3 * want_grads[name].abs().max().item() + 1e-5  # float32 noise near 0
        error = (grads[name] - want_grads[name]).abs().max().item()
        if error <= tolerance:
            continue
        # Ill-conditioned cases (e.g. batch norm over 2 samples) amplify float32 rounding, and
        # the two loops round differently (it depends on the CPU's vector width). Then the
        # compiled loop must be as near the float64 result as the Python loop is.
        if exact is None:
            start64 = {k: v.double() if v.is_floating_point() else v for k, v in start.items()}
            net64 = LARNN(config).train(train).double()
            exact = run_loop(
                monkeypatch, net64, start64, x.double(), "0", seed, chunks, knobs=knobs
            )[2]
        compiled_error = (grads[name].double() - exact[name]).abs().max().item()
        python_error = (want_grads[name].double() - exact[name]).abs().max().item()
        assert compiled_error <= 2 * python_error + tolerance, (name, error, python_error)


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() != "AVX512" or "ATEN_CPU_CAPABILITY" in os.environ,
    reason="covers the AVX2 build from an AVX-512 machine (on an AVX2 one the rest of this file "
    "does)",
)
def test_loops_built_for_avx2_agree_too():
    """The loops as built for an AVX2 CPU (8 batch columns a block, one register, where
    AVX-512 takes 16), in a child process with ATen capped at AVX2: the comparisons above with
    the reference and with the Python loops."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "LARNN_COMPILED_SCAN": "1"}
    lanes = subprocess.run(
        [sys.executable, "-c", "from larnn.scan import compiled; print(compiled.LANES)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert lanes.stdout.split() == ["8"]
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", Path(__file__)]
        + ["-k", "equals_reference or many_blocks or random_cases or one_series"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert " passed" in child.stdout
