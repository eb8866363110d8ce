"""The zoo: shapes, gradients, sizes, architecture details, determinism and shape errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.models import MODEL_NAMES, build_model
from batchlab.spec import ModelSpec

DIGITS, MNIST, CIFAR, MNIST1D = (1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 40)
IMAGE_MODELS = ("lenet5", "alexnet_small", "mobilenet_v2", "squeezenet")

# Every (model, input shape) pair the zoo supports that the data sources produce.
SUPPORTED = [
    *[("mlp", s) for s in (DIGITS, MNIST, CIFAR, MNIST1D, (64,))],
    *[(m, s) for m in IMAGE_MODELS for s in (DIGITS, MNIST, CIFAR)],
    ("cnn1d", MNIST1D),
    ("cnn1d", (40,)),
]

# Sane parameter ranges at 10 classes, over the supported shapes.
PARAM_RANGES = {
    "mlp": (40_000, 1_000_000),
    "lenet5": (100_000, 2_000_000),
    "alexnet_small": (1_000_000, 3_000_000),
    "mobilenet_v2": (2_000_000, 2_500_000),
    "squeezenet": (500_000, 1_000_000),
    "cnn1d": (5_000, 6_000),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, shape: tuple[int, ...], classes: int = 10, **spec: object) -> nn.Module:
    return build_model(ModelSpec(name=name, **spec), shape, classes)


def test_model_names() -> None:
    assert MODEL_NAMES == ("mlp", "lenet5", "alexnet_small", "mobilenet_v2", "squeezenet", "cnn1d")


@pytest.mark.parametrize(("name", "shape"), SUPPORTED, ids=str)
def test_logits_shape_backward_and_size(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build(name, shape, classes=7)
    x = torch.randn(3, *shape)
    logits = model(x)
    assert logits.shape == (3, 7)
    nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
    low, high = PARAM_RANGES[name]
    assert low <= n_params(build(name, shape)) <= high


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_construction_is_deterministic_under_manual_seed(name: str) -> None:
    shape = MNIST1D if name == "cnn1d" else MNIST
    torch.manual_seed(0)
    first = build(name, shape).state_dict()
    torch.manual_seed(0)
    second = build(name, shape).state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_building_leaves_batchnorm_statistics_untouched() -> None:
    # The flatten-size probe runs a dummy forward; it must not update running statistics.
    for name in ("alexnet_small", "mobilenet_v2"):
        model = build(name, CIFAR)
        assert model.training
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert int(m.num_batches_tracked) == 0
                assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))


def test_mlp_layers_follow_spec_hidden_and_dropout() -> None:
    model = build("mlp", MNIST, hidden=[64, 32])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 64), (64, 32), (32, 10)]
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    dropped = build("mlp", MNIST, hidden=[64, 32], dropout=0.3)
    assert [m.p for m in dropped.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert len(list(build("mlp", MNIST, hidden=[]).modules())) == 3  # Sequential, Flatten, Linear


@pytest.mark.parametrize(("shape", "flat"), [(MNIST, 64 * 12 * 12), (DIGITS, 64 * 4 * 4)])
def test_lenet5_matches_the_keras_mnist_cnn(shape: tuple[int, ...], flat: int) -> None:
    model = build("lenet5", shape)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(flat, 128), (128, 10)]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 1


def test_lenet5_works_down_to_4x4() -> None:
    assert build("lenet5", (1, 4, 4))(torch.randn(2, 1, 4, 4)).shape == (2, 10)


def test_dropout_override_replaces_every_default() -> None:
    for name in ("lenet5", "alexnet_small", "mobilenet_v2", "squeezenet"):
        ps = [m.p for m in build(name, CIFAR, dropout=0.1).modules() if isinstance(m, nn.Dropout)]
        assert ps and all(p == 0.1 for p in ps), name
    mobilenet = build("mobilenet_v2", CIFAR)
    assert [m.p for m in mobilenet.modules() if isinstance(m, nn.Dropout)] == [0.2]


def test_alexnet_small_structure() -> None:
    model = build("alexnet_small", CIFAR)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 5
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3


def test_cnn1d_matches_the_mnist1d_reference_exactly() -> None:
    model = build("cnn1d", MNIST1D)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (25, 5, 2, 1),
        (25, 3, 2, 1),
        (25, 3, 2, 1),
    ]
    # Lengths 40 → 19 → 10 → 5, so the linear layer sees 25 * 5 = 125 features.
    conv1 = 1 * 25 * 5 + 25
    conv23 = 2 * (25 * 25 * 3 + 25)
    linear = 25 * 5 * 10 + 10
    assert n_params(model) == conv1 + conv23 + linear == 5210


def test_cnn1d_takes_flat_and_channel_batches() -> None:
    model = build("cnn1d", (40,))
    assert model(torch.randn(4, 40)).shape == (4, 10)
    assert build("cnn1d", (2, 40))(torch.randn(4, 2, 40)).shape == (4, 10)


def test_mobilenet_width_multiplier() -> None:
    full = build("mobilenet_v2", CIFAR)
    half = build("mobilenet_v2", CIFAR, width=0.5)
    assert n_params(half) < n_params(full)
    wide = build("mobilenet_v2", CIFAR, width=0.75)
    for m in wide.modules():
        if isinstance(m, nn.Conv2d) and m.in_channels != 3:
            assert m.out_channels % 8 == 0, m
    # Residual blocks keep the spatial size; 32x32 input ends at 4x4 before the pool.
    assert wide(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_squeezenet_ends_in_a_conv_classifier() -> None:
    model = build("squeezenet", CIFAR, classes=5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[-1].out_channels == 5 and convs[-1].kernel_size == (1, 1)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_conv_models_reject_flat_features(name: str) -> None:
    with pytest.raises(ModelError, match="image-shaped") as info:
        build(name, (64,))
    assert "'mlp'" in str(info.value)


def test_image_models_on_sequences_suggest_cnn1d() -> None:
    with pytest.raises(ModelError, match="'cnn1d'"):
        build("lenet5", MNIST1D)


def test_too_small_images_are_rejected_with_the_minimum() -> None:
    with pytest.raises(ModelError, match="at least 8x8"):
        build("alexnet_small", (3, 6, 6))


def test_cnn1d_rejects_images() -> None:
    with pytest.raises(ModelError, match=r"\(channels, length\)"):
        build("cnn1d", MNIST)


def test_unknown_name_lists_the_zoo_and_suggests() -> None:
    with pytest.raises(ModelError) as info:
        build("lenet", MNIST)
    message = str(info.value)
    assert "Did you mean 'lenet5'?" in message
    assert all(name in message for name in MODEL_NAMES)
    assert "package.module:factory" in message
    with pytest.raises(ModelError, match="Did you mean 'mobilenet_v2'"):
        build("MobileNet", MNIST)


@pytest.mark.parametrize("shape", [(), (0, 8, 8), (-1,)])
def test_bad_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ModelError, match="input_shape"):
        build("mlp", shape)


def test_bad_num_classes() -> None:
    with pytest.raises(ModelError, match="num_classes"):
        build("mlp", MNIST, classes=0)


@pytest.mark.parametrize(("name", "field", "value", "takes"), [
    ("lenet5", "hidden", [64], "'lenet5' takes model.dropout."),
    ("cnn1d", "width", 0.5, "'cnn1d' takes none of the model fields."),
    ("squeezenet", "hidden", [64], "'squeezenet' takes model.dropout, model.weights, model.freeze."),
    ("mlp", "width", 2.0, "'mlp' takes model.hidden, model.dropout."),
    ("mobilenet_v2", "hidden", [64], "'mobilenet_v2' takes model.width, model.dropout"),
    ("torchvision:resnet18", "width", 0.5, "or pass the size in model.kwargs."),
])
def test_a_zoo_model_refuses_the_widths_it_never_reads(name: str, field: str, value: object,
                                                       takes: str) -> None:
    # the run would be the one without them under another run id (trained again)
    with pytest.raises(ModelError) as err:
        build(name, CIFAR if name != "cnn1d" else (40,), **{field: value})
    text = str(err.value)
    assert f"model.{field} = {value!r} is set, but model '{name}' never reads it" in text
    assert takes in text and f"Remove model.{field}" in text
    # at its default, the field is in every stored config and refused nowhere
    default = ModelSpec.model_fields[field].default
    assert build(name, CIFAR if name != "cnn1d" else (40,), **{field: default}) is not None
