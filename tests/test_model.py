"""LARNN against the slow, obviously-correct reference of larnn.reference (an explicit deque)."""

from __future__ import annotations

import itertools

import pytest
import torch

from larnn.errors import ConfigError
from larnn.model import LARNN, InferenceKnobs, LARNNConfig, LARNNState
from larnn.reference import reference_layer, reference_stack


def randomise_norms(model: torch.nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so norms matter in eval mode."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
            with torch.no_grad():
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
                if isinstance(module, torch.nn.BatchNorm1d):
                    module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape))
                    module.running_var.copy_(0.5 + torch.rand(module.running_var.shape))


def make_model(seed: int = 0, **overrides) -> LARNN:
    options = dict(input_size=5, hidden_size=12, num_layers=2, heads=3, window=4)
    options.update(overrides)
    torch.manual_seed(seed)
    model = LARNN(LARNNConfig(**options)).double()
    randomise_norms(model)
    return model.eval()


NORMS = ["batch", "layer", "none"]
ACTIVATIONS = ["elu", "relu", "tanh", "none"]
OPTION_GRID = [
    dict(
        mode=mode,
        positional_encoding=positional,
        stacked_residual=stacked,
        kv_norm=NORMS[index % 3],
        hidden_norm=NORMS[(index + 1) % 3],
        kv_activation=ACTIVATIONS[index % 4],
        query_activation=ACTIVATIONS[(index + 2) % 4],
    )
    for index, (mode, positional, stacked) in enumerate(
        itertools.product(["residual", "layer"], [False, True], [False, True])
    )
]


@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_fast_path_equals_reference(options):
    model = make_model(num_layers=3, **options)
    x = torch.randn(9, 2, 5, dtype=torch.float64)  # T > window, so the queue wraps
    output, _, record = model(x, return_attention=True)
    expected, expected_weights = reference_stack(model, x)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    for got, want in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "knobs",
    [
        InferenceKnobs(window=2),
        InferenceKnobs(window=6),  # beyond training window, within max_window
        InferenceKnobs(kv_activation="tanh"),
        InferenceKnobs(head_mask=torch.tensor([1.0, 0.0, 1.0])),
        InferenceKnobs(head_mask=torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])),
        InferenceKnobs(hidden_steps=[2, 3, 7]),
        InferenceKnobs(hidden_steps=range(0, 10, 2), window=5, head_mask=[0, 1, 1]),
        InferenceKnobs(hidden_steps=[4, 5, 6, 7]),  # step 8 (window 4) sees only hidden ones
    ],
)
def test_knobs_equal_reference(knobs):
    model = make_model(max_window=6, positional_encoding=True)
    x = torch.randn(10, 3, 5, dtype=torch.float64)
    output, _, record = model(x, knobs=knobs, return_attention=True)
    expected, expected_weights = reference_stack(model, x.clone(), knobs)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    for got, want in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    baseline, _ = model(x)
    assert not torch.allclose(output, baseline), "a knob must change the output"


def test_head_mask_zeroes_that_head_only():
    model = make_model()
    x = torch.randn(8, 2, 5, dtype=torch.float64)
    _, _, record = model(x, knobs=InferenceKnobs(head_mask=[1, 0, 1]), return_attention=True)
    for weights in record.weights:
        assert torch.all(weights[:, :, 1] == 0)
        assert torch.all(weights[:, 1:, 0].sum(-1) > 0.99)


def test_smaller_window_attends_only_to_most_recent_slots():
    model = make_model(window=5)
    x = torch.randn(12, 2, 5, dtype=torch.float64)
    _, _, record = model(x, knobs=InferenceKnobs(window=2), return_attention=True)
    assert record.weights[0].shape == (2, 12, 3, 2)
    steps = torch.arange(12)[:, None]
    filled = record.slot_time >= 0
    assert torch.all(record.slot_time[filled] >= (steps - 2).expand(-1, 2)[filled])


def test_chunked_equals_whole():
    model = make_model(positional_encoding=True, max_window=6)
    x = torch.randn(2, 13, 5, dtype=torch.float64)
    whole, whole_state, whole_record = model(x.transpose(0, 1), return_attention=True)
    state, outputs, weights, times = None, [], [], []
    for chunk in x.transpose(0, 1).split([3, 1, 5, 4]):
        out, state, record = model(chunk, state, return_attention=True)
        outputs.append(out)
        weights.append(record.weights[1])
        times.append(record.slot_time)
    torch.testing.assert_close(torch.cat(outputs), whole, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat(weights, dim=1), whole_record.weights[1])
    assert torch.equal(torch.cat(times), whole_record.slot_time)
    assert state.steps == whole_state.steps == 13
    torch.testing.assert_close(state.memory, whole_state.memory)


def test_attention_rows_sum_to_one_and_skip_empty_slots():
    model = make_model(window=6)
    x = torch.randn(10, 4, 5, dtype=torch.float64)
    _, _, record = model(x, return_attention=True)
    empty = record.slot_time < 0  # (T, K)
    for weights in record.weights:  # (B, T, NH, K)
        assert torch.all(weights.permute(1, 3, 0, 2)[empty] == 0)
        sums = weights.sum(-1)
        torch.testing.assert_close(sums[:, 1:], torch.ones_like(sums[:, 1:]))
        assert torch.all(sums[:, 0] == 0), "step 0 has an empty queue: nothing to attend to"


def test_slot_times_are_the_last_k_steps():
    model = make_model(window=4)
    x = torch.randn(9, 1, 5, dtype=torch.float64)
    _, _, record = model(x, return_attention=True)
    for t in range(9):
        expected = [s if s >= 0 else -1 for s in range(t - 4, t)]
        assert record.slot_time[t].tolist() == expected


def test_every_parameter_gets_a_gradient_and_is_registered():
    torch.manual_seed(0)
    config = LARNNConfig(
        input_size=5,
        hidden_size=8,
        num_layers=3,
        heads=2,
        window=3,
        positional_encoding=True,
        hidden_norm="batch",
        query_activation="elu",
        stacked_residual=True,
        dropout=0.1,
        attention_dropout=0.1,
    )
    model = LARNN(config).train()
    output, _ = model(torch.randn(6, 4, 5))
    output.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    per_layer = sum(sum(p.numel() for p in layer.parameters()) for layer in model.layers)
    assert sum(p.numel() for p in model.parameters()) == per_layer
    assert {name.split(".")[1] for name, _ in model.named_parameters()} == {"0", "1", "2"}


def test_layers_read_the_previous_layer_not_the_raw_input():
    model = make_model(num_layers=2)
    x = torch.randn(6, 2, 5, dtype=torch.float64)
    _, state = model(x)
    first, _, (_, h0, _) = reference_layer(model.layers[0], x, 4, None, "elu")
    _, _, (_, h1, _) = reference_layer(model.layers[1], first, 4, None, "elu")
    torch.testing.assert_close(state.h[0], h0)
    torch.testing.assert_close(state.h[1], h1)
    assert not torch.allclose(state.h[0], state.h[1]), "each layer has its own state"


def test_seeded_runs_are_identical():
    x = torch.randn(7, 3, 5)

    def run():
        torch.manual_seed(42)
        model = LARNN(LARNNConfig(5, 8, num_layers=2, heads=2, window=3, dropout=0.2)).train()
        return model(x)[0]

    torch.testing.assert_close(run(), run(), atol=0, rtol=0)


def test_batch_first_is_the_transpose():
    model = make_model()
    batch_first = make_model(batch_first=True)
    x = torch.randn(7, 3, 5, dtype=torch.float64)
    out, _ = model(x)
    out_bf, _ = batch_first(x.transpose(0, 1))
    torch.testing.assert_close(out_bf, out.transpose(0, 1))


def test_batch_size_one_in_eval_is_finite():
    torch.manual_seed(0)
    model = LARNN(LARNNConfig(9, 16, num_layers=2, heads=4, hidden_norm="batch")).eval()
    output, state = model(torch.randn(20, 1, 9))
    assert output.shape == (20, 1, 16) and torch.isfinite(output).all()
    assert isinstance(state, LARNNState)


def test_config_round_trip():
    config = LARNNConfig(9, 81, num_layers=3, heads=27, window=38, positional_encoding=True)
    assert LARNNConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "options, field",
    [
        (dict(hidden_size=10, heads=3), "heads"),
        (dict(window=0), "window"),
        (dict(max_window=2, window=4), "max_window"),
        (dict(mode="concat"), "mode"),
        (dict(kv_norm="group"), "kv_norm"),
        (dict(dropout=1.5), "dropout"),
        (dict(num_layers=True), "num_layers"),
    ],
)
def test_config_validation_names_the_field(options, field):
    base = dict(input_size=5, hidden_size=12, heads=3)
    base.update(options)
    with pytest.raises(ConfigError, match=f"LARNNConfig.{field}"):
        LARNNConfig(**base)


def test_config_from_dict_rejects_unknown_and_mistyped_fields():
    with pytest.raises(ConfigError, match="unknown field"):
        LARNNConfig.from_dict({"input_size": 3, "hidden_size": 4, "windows": 3})
    with pytest.raises(ConfigError, match="missing required"):
        LARNNConfig.from_dict({"input_size": 3})
    with pytest.raises(ConfigError, match="LARNNConfig.window"):
        LARNNConfig.from_dict({"input_size": 3, "hidden_size": 4, "window": "3"})


def test_window_knob_beyond_queue_is_refused():
    model = make_model(window=4)
    with pytest.raises(ConfigError, match="1..4"):
        model(torch.randn(3, 1, 5, dtype=torch.float64), knobs=InferenceKnobs(window=5))
    with pytest.raises(ConfigError, match="head_mask"):
        model(torch.randn(3, 1, 5, dtype=torch.float64), knobs=InferenceKnobs(head_mask=[1, 0]))


@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_fast_path_without_grad_equals_reference(options):
    """Under no_grad the scan keeps nothing for backward: the same results all the same."""
    model = make_model(num_layers=3, **options)
    x = torch.randn(9, 2, 5, dtype=torch.float64)
    with torch.no_grad():
        output, _, record = model(x, return_attention=True)
        expected, expected_weights = reference_stack(model, x)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    for got, want in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def gradients(model, loss_fn, x):
    """d loss / d (parameters, x) as a dict; the loss sees outputs and attention weights."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    output, weights = loss_fn(x)
    probe = torch.linspace(-1, 1, output.numel(), dtype=x.dtype, device=x.device)
    probe = probe.view(output.shape)
    loss = (output * probe).sum() + sum((w * w.cos()).sum() for w in weights)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return {**grads, "x": x.grad}


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_gradients_equal_reference(options, train):
    """The scan's hand-written backward against autograd through the reference."""
    model = make_model(**options).train(train)
    x = torch.randn(7, 4, 5, dtype=torch.float64)  # T > window: the queue wraps

    def fast(x):
        output, _, record = model(x, return_attention=True)
        return output, record.weights

    got = gradients(model, fast, x)
    want = gradients(model, lambda x: reference_stack(model, x), x)
    assert got.keys() == want.keys()
    for name in got:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize(
    "knobs",
    [
        InferenceKnobs(window=2),
        InferenceKnobs(kv_activation="relu"),
        InferenceKnobs(head_mask=torch.tensor([1.0, 0.0, 1.0])),
        InferenceKnobs(hidden_steps=[1, 4, 5, 6, 7], window=4),
    ],
)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_gradients_with_knobs_equal_reference(knobs, train):
    model = make_model(max_window=6, positional_encoding=True).train(train)
    x = torch.randn(10, 3, 5, dtype=torch.float64)

    def fast(x):
        output, _, record = model(x, knobs=knobs, return_attention=True)
        return output, record.weights

    def reference(x):
        return reference_stack(model, x, knobs)

    got, want = gradients(model, fast, x), gradients(model, reference, x)
    for name in got:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5, msg=name)


def test_a_hidden_step_is_an_empty_slot():
    """Hiding every step leaves attention nothing to read, as with every head off; a hidden
    step gets weight 0 and the rest of its row is renormalised."""
    model = make_model(window=4)
    x = torch.randn(9, 2, 5, dtype=torch.float64)
    all_hidden, _, record = model(
        x, knobs=InferenceKnobs(hidden_steps=range(9)), return_attention=True
    )
    heads_off, _ = model(x, knobs=InferenceKnobs(head_mask=[0, 0, 0]))
    torch.testing.assert_close(all_hidden, heads_off, atol=1e-12, rtol=0)
    assert all(torch.all(w == 0) for w in record.weights)

    _, _, record = model(x, knobs=InferenceKnobs(hidden_steps=[3]), return_attention=True)
    shown = record.slot_time == 3  # (T, K): where step 3 sits in a window
    for weights in record.weights:  # (B, T, NH, K)
        assert torch.all(weights.permute(1, 3, 0, 2)[shown] == 0)
        rows = weights.sum(-1)[:, 1:]  # every step after the first attends somewhere
        torch.testing.assert_close(rows, torch.ones_like(rows))


def test_hidden_steps_count_absolute_time_across_chunks():
    model = make_model(positional_encoding=True, max_window=6)
    x = torch.randn(12, 2, 5, dtype=torch.float64)
    knobs = InferenceKnobs(hidden_steps=[1, 5, 6, 10])
    whole, _ = model(x, knobs=knobs)
    state, outputs = None, []
    for chunk in x.split([4, 3, 5]):
        out, state = model(chunk, state, knobs=knobs)
        outputs.append(out)
    torch.testing.assert_close(torch.cat(outputs), whole, atol=1e-10, rtol=0)
    plain, _ = model(x)
    assert not torch.allclose(whole, plain)


def test_hidden_steps_in_float32_equal_reference():
    """float32 on the CPU: the compiled loops where they are built (test_compiled_scan.py
    checks them in depth), the Python loops elsewhere."""
    model = make_model(kv_norm="batch")
    x = torch.randn(8, 3, 5, dtype=torch.float64)
    knobs = InferenceKnobs(hidden_steps=[2, 4])
    expected, _ = reference_stack(model, x, knobs)
    output, _ = model.float()(x.float(), knobs=knobs)
    torch.testing.assert_close(output.double(), expected, atol=1e-5, rtol=0)


def test_knobs_are_hashable_values_and_refuse_bad_hidden_steps():
    assert InferenceKnobs(hidden_steps=[3, 1, 1.0]) == InferenceKnobs(hidden_steps=(1, 3))
    assert InferenceKnobs(hidden_steps=[]) == InferenceKnobs()
    assert InferenceKnobs(hidden_steps=[[2, 1], []]).hidden_steps == ((1, 2), ())
    assert InferenceKnobs(hidden_steps=[[], []]) == InferenceKnobs()
    assert hash(InferenceKnobs(head_mask=torch.tensor([1, 0]), hidden_steps=[2])) == hash(
        InferenceKnobs(head_mask=(1.0, 0.0), hidden_steps=(2,))
    )
    for bad in ([-1], [1.5], ["a"], 3, [[1], [-2]]):
        with pytest.raises(ConfigError, match="hidden_steps"):
            InferenceKnobs(hidden_steps=bad)
    with pytest.raises(ConfigError, match="head_mask"):
        InferenceKnobs(head_mask=[[1, 0], [1]])


def test_gradients_with_attention_dropout_match_finite_differences():
    """Dropout masks are drawn inside the scan; reseeding makes each call the same function."""
    torch.manual_seed(0)
    config = LARNNConfig(
        input_size=3,
        hidden_size=6,
        num_layers=2,
        heads=2,
        window=3,
        positional_encoding=True,
        kv_norm="layer",
        hidden_norm="batch",
        query_activation="tanh",
        attention_dropout=0.3,
    )
    model = LARNN(config).double().train()
    x = torch.randn(6, 3, 3, dtype=torch.float64, requires_grad=True)

    def run(x):
        torch.manual_seed(1)
        output, _, record = model(x, return_attention=True)
        return output, record.weights[1]

    assert torch.autograd.gradcheck(run, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_chunked_gradients_equal_whole():
    """Gradients flow through the carried state (h, c and the queue) into earlier chunks."""
    model = make_model(positional_encoding=True, max_window=6)
    x = torch.randn(13, 2, 5, dtype=torch.float64)

    def chunked(x):
        state, outputs = None, []
        for chunk in x.split([3, 1, 5, 4]):
            output, state = model(chunk, state)
            outputs.append(output)
        return torch.cat(outputs) + state.memory.sum() + state.c.sum(), []

    def whole_with_state(x):
        output, state = model(x)
        return output + state.memory.sum() + state.c.sum(), []

    got, want = gradients(model, chunked, x), gradients(model, whole_with_state, x)
    for name in got:
        torch.testing.assert_close(got[name], want[name], atol=1e-10, rtol=1e-10, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("options", OPTION_GRID, ids=lambda o: "-".join(map(str, o.values())))
def test_cuda_equals_reference(options, train, dtype):
    """The scan on a GPU (the Python loops) against the float64 reference on the CPU."""
    model = make_model(**options).train(train)
    on_gpu = make_model(**options).to("cuda", dtype).train(train)
    x = torch.randn(7, 4, 5, dtype=torch.float64)

    def fast(x):
        output, _, record = on_gpu(x, return_attention=True)
        return output, record.weights

    got = gradients(on_gpu, fast, x.to("cuda", dtype))
    want = gradients(model, lambda x: reference_stack(model, x), x)
    tolerance = 1e-5 if dtype == torch.float64 else 2e-4
    assert got.keys() == want.keys()
    for name in got:
        torch.testing.assert_close(
            got[name].cpu().double(), want[name], atol=tolerance, rtol=tolerance, msg=name
        )


def test_hidden_steps_per_sample_equal_each_sample_alone_and_reference():
    model = make_model(positional_encoding=True, max_window=6, kv_norm="layer")
    x = torch.randn(10, 3, 5, dtype=torch.float64)
    per_sample = ((2, 3), (), (4, 5, 6, 7, 8))  # the third: step 9 sees only hidden slots
    knobs = InferenceKnobs(hidden_steps=per_sample)
    output, _, record = model(x, knobs=knobs, return_attention=True)
    for b, steps in enumerate(per_sample):
        alone, _, alone_record = model(
            x[:, b : b + 1], knobs=InferenceKnobs(hidden_steps=steps), return_attention=True
        )
        torch.testing.assert_close(output[:, b : b + 1], alone, atol=1e-12, rtol=0)
        for got, want in zip(record.weights, alone_record.weights, strict=True):
            torch.testing.assert_close(got[b : b + 1], want, atol=1e-12, rtol=0)
    expected, expected_weights = reference_stack(model, x, knobs)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)
    for got, want in zip(record.weights, expected_weights, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="per-sample"):
        model(x[:, :2], knobs=knobs)


def test_gradients_with_hidden_steps_per_sample_equal_reference():
    model = make_model(positional_encoding=True, max_window=6)
    x = torch.randn(9, 2, 5, dtype=torch.float64)
    knobs = InferenceKnobs(hidden_steps=((1, 4, 5, 6, 7), (3,)))

    def fast(x):
        output, _, record = model(x, knobs=knobs, return_attention=True)
        return output, record.weights

    got = gradients(model, fast, x)
    want = gradients(model, lambda x: reference_stack(model, x, knobs), x)
    for name in got:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5, msg=name)
