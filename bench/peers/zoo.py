"""hone's model zoo re-implemented in plain PyTorch, for timing hone against its peers.

Each class mirrors one file of src/models/ with the DEFAULT config that src/models/registry.cpp
gives it for its default dataset (Fashion-MNIST [1,28,28] with 10 classes for the image models,
GoldSilver windows [30,2] -> 1 value for lstm/attention). Submodule and parameter names are
hone's (LibTorch names them the same way), so a run's model.safetensors loads with strict=True.

`minilm` is hone's BertEncoder with the all-MiniLM-L6-v2 shape (sentence-transformers: mean pooling
over non-pad tokens, L2 normalization); check_minilm.py loads the real weights into it and compares
with sentence-transformers. Like hone it leaves out BERT's pooler, which mean pooling never uses.

Only torch is needed (no transformers): this file runs on the GPU machine as it is.
Weights are random (seeded): the models are for timing, never accuracy.

How to add a model: a class here with hone's names and defaults, one ZooEntry in ZOO with hone's
parameter count (`hone bench NAME --json` prints "parameters"), then run check_params.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

FASHION_MNIST_SHAPE = (1, 28, 28)
FASHION_MNIST_CLASSES = 10
GOLDSILVER_WINDOW = 30  # hone's DataOptions::window
GOLDSILVER_FEATURES = 2  # gold, silver log-returns
GOLDSILVER_OUTPUTS = 1  # next day's gold return
MINILM_SEQUENCE = 128
MINILM_TOKEN_RANGE = (1000, 30522)  # random ids, never 0 (the pad id): timing only


def _kaiming_conv(layer: nn.Conv2d) -> nn.Conv2d:
    # As hone's conv(): kaiming normal, fan-out, ReLU gain, no bias (a BatchNorm follows).
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return layer


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> nn.Conv2d:
    return _kaiming_conv(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
    )


# --- mlp (src/models/mlp.cpp) ---------------------------------------------------------------


class Mlp(nn.Module):
    """Flatten, then (Linear, activation, Dropout) per hidden width, then a final Linear."""

    def __init__(self, in_features=784, hidden=(256, 128), out_features=10, dropout=0.1, activation="relu"):
        super().__init__()
        self.in_features = in_features
        activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), activations[activation](), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(x.shape[0], self.in_features))


# --- cnn (src/models/resnet_cnn.cpp) ----------------------------------------------------------


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = _conv(in_ch, out_ch, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = _conv(out_ch, out_ch, 3, 1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(_conv(in_ch, out_ch, 1, stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNetCnn(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, widths=(32, 64, 128), blocks_per_stage=1, dropout=0.1):
        super().__init__()
        width = widths[0]
        layers: list[nn.Module] = [_conv(in_channels, width, 3, 1), nn.BatchNorm2d(width), nn.ReLU()]
        for stage, stage_width in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(width, stage_width, stride))
                width = stage_width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).mean((2, 3))))


# --- mobilenet (src/models/mobilenet_cnn.cpp) ---------------------------------------------------


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv-BN-ReLU6, then pointwise 1x1 conv-BN-ReLU6."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.depthwise = _conv(in_ch, in_ch, 3, stride, groups=in_ch)
        self.depthwise_norm = nn.BatchNorm2d(in_ch)
        self.pointwise = _conv(in_ch, out_ch, 1, 1)
        self.pointwise_norm = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardtanh(self.depthwise_norm(self.depthwise(x)), 0.0, 6.0)
        return F.hardtanh(self.pointwise_norm(self.pointwise(y)), 0.0, 6.0)


class MobileNetCnn(nn.Module):
    def __init__(
        self, in_channels=1, num_classes=10, stem_width=32, widths=(64, 128, 128, 256), strides=(1, 2, 1, 2), dropout=0.1
    ):
        super().__init__()
        assert len(widths) == len(strides), "mobilenet: one stride per width"
        layers: list[nn.Module] = [_conv(in_channels, stem_width, 3, 1), nn.BatchNorm2d(stem_width), nn.ReLU6()]
        width = stem_width
        for out_ch, stride in zip(widths, strides):
            layers.append(DepthwiseSeparable(width, out_ch, stride))
            width = out_ch
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).mean((2, 3))))


# --- the encoder layer (src/models/transformer_encoder.cpp) ---------------------------------------


class TransformerEncoderLayer(nn.Module):
    """BERT's layer (post-LN by default) with scaled_dot_product_attention and BERT's names."""

    def __init__(self, d_model=64, num_heads=4, ffn_dim=128, dropout=0.1, norm_first=False, activation="gelu",
                 layer_norm_eps=1e-12):
        super().__init__()
        assert d_model % num_heads == 0, "num_heads must divide d_model"
        self.d_model, self.num_heads, self.dropout_p = d_model, num_heads, dropout
        self.norm_first, self.activation = norm_first, activation
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.attention_output = nn.Linear(d_model, d_model)
        self.attention_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.intermediate = nn.Linear(d_model, ffn_dim)
        self.output = nn.Linear(ffn_dim, d_model)
        self.output_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B,T,d]; key_padding_mask [B,T] bool, true where the token is padding."""
        if self.norm_first:
            y = x + self.dropout(self._attention(self.attention_norm(x), key_padding_mask))
            return y + self.dropout(self._feed_forward(self.output_norm(y)))
        y = self.attention_norm(x + self.dropout(self._attention(x, key_padding_mask)))
        return self.output_norm(y + self.dropout(self._feed_forward(y)))

    def _attention(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        batch, tokens = x.shape[0], x.shape[1]
        head_dim = self.d_model // self.num_heads

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, tokens, self.num_heads, head_dim).transpose(1, 2)  # [B, heads, T, hd]

        attend = None if key_padding_mask is None else key_padding_mask.logical_not().view(batch, 1, 1, tokens)
        context = F.scaled_dot_product_attention(
            split_heads(self.query(x)), split_heads(self.key(x)), split_heads(self.value(x)), attn_mask=attend,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return self.attention_output(context.transpose(1, 2).reshape(batch, tokens, self.d_model))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.intermediate(x)
        hidden = F.gelu(hidden) if self.activation == "gelu" else torch.relu(hidden)  # exact (erf) GELU
        return self.output(self.dropout(hidden))


# --- transformer (src/models/transformer_classifier.cpp) ------------------------------------------


class TransformerClassifier(nn.Module):
    """Image rows (or time steps) as tokens, learned positions, pre-LN layers, mean pool, LN, Linear."""

    def __init__(self, input_shape=FASHION_MNIST_SHAPE, out_features=10, d_model=64, num_heads=4, ffn_dim=128,
                 num_layers=2, dropout=0.1):
        super().__init__()
        assert len(input_shape) in (2, 3), "input_shape must be [C,H,W] or [T,F]"
        self.input_shape = tuple(input_shape)
        self.tokens = input_shape[1] if len(input_shape) == 3 else input_shape[0]
        self.token_features = input_shape[0] * input_shape[2] if len(input_shape) == 3 else input_shape[1]
        self.embed = nn.Linear(self.token_features, d_model)
        self.positions = nn.Parameter(torch.empty(1, self.tokens, d_model))
        nn.init.normal_(self.positions, 0.0, 0.02)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, ffn_dim, dropout, norm_first=True, activation="gelu",
                                    layer_norm_eps=1e-5)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=1e-5)
        self.head = nn.Linear(d_model, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if x.dim() == 4:  # [B,C,H,W] -> [B,H,C,W] -> [B,H,C*W]
            x = x.permute(0, 2, 1, 3).reshape(batch, self.tokens, self.token_features)
        x = self.embed(x) + self.positions
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x.mean(1)))


# --- lstm (src/models/lstm_forecaster.cpp) ------------------------------------------------------


class LstmForecaster(nn.Module):
    """Batch-first LSTM; the last step's hidden state through a zero-initialized Linear."""

    def __init__(self, input_size=GOLDSILVER_FEATURES, hidden_size=64, num_layers=2, output_size=1, dropout=0.1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, output_size)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0].select(1, -1))


# --- attention (src/models/attention_forecaster.cpp) ---------------------------------------------


class AttentionForecaster(nn.Module):
    """LSTM; attention with the last hidden state as the query; [context, last] -> Linear-ReLU-Linear."""

    def __init__(self, input_size=GOLDSILVER_FEATURES, hidden_size=64, num_layers=1, num_heads=4, output_size=1,
                 dropout=0.1):
        super().__init__()
        assert hidden_size % num_heads == 0, "num_heads must divide hidden_size"
        self.hidden_size, self.num_heads, self.dropout_p = hidden_size, num_heads, dropout
        h = hidden_size
        self.lstm = nn.LSTM(input_size, h, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.attention_output = nn.Linear(h, h)
        self.hidden = nn.Linear(2 * h, h)
        self.head = nn.Linear(h, output_size)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps = x.shape[0], x.shape[1]
        head_dim = self.hidden_size // self.num_heads
        sequence = self.lstm(x)[0]  # [B, T, hidden]
        last = sequence.select(1, -1)  # [B, hidden]

        def split_heads(t: torch.Tensor, length: int) -> torch.Tensor:
            return t.view(batch, length, self.num_heads, head_dim).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            split_heads(self.query(last.unsqueeze(1)), 1), split_heads(self.key(sequence), steps),
            split_heads(self.value(sequence), steps), dropout_p=self.dropout_p if self.training else 0.0,
        )  # [B, heads, 1, head_dim]
        attended = self.attention_output(context.reshape(batch, self.hidden_size))
        y = torch.relu(self.hidden(torch.cat([attended, last], 1)))
        y = F.dropout(y, self.dropout_p, self.training)
        return self.head(y)


# --- minilm: all-MiniLM-L6-v2 (BERT encoder + mean pooling + L2 normalize) ------------------------


class BertEmbeddings(nn.Module):
    """As hone's BertEmbeddings (src/models/bert_encoder.cpp), names included."""

    def __init__(self, vocab_size, hidden, max_positions, type_vocab_size, layer_norm_eps, dropout):
        super().__init__()
        self.word = nn.Embedding(vocab_size, hidden)
        self.position = nn.Embedding(max_positions, hidden)
        self.token_type = nn.Embedding(type_vocab_size, hidden)
        self.norm = nn.LayerNorm(hidden, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        tokens = input_ids.shape[1]
        # Positions 0..T-1 and token type 0 (one segment, as sentence-transformers' encode()) are the
        # same for every row: added once and broadcast over the batch, as hone does.
        x = self.word(input_ids) + (self.position.weight[:tokens] + self.token_type.weight[0]).unsqueeze(0)
        return self.dropout(self.norm(x))


class MiniLM(nn.Module):
    """input_ids [B,T] int64 (0 = padding) -> sentence embeddings [B, hidden], L2-normalized.
    hone's BertEncoder ("minilm", src/models/bert_encoder.cpp) with its default config."""

    def __init__(self, vocab_size=30522, hidden=384, num_layers=6, num_heads=12, intermediate=1536,
                 max_positions=512, type_vocab_size=2, layer_norm_eps=1e-12, dropout=0.1):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, hidden, max_positions, type_vocab_size, layer_norm_eps, dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(hidden, num_heads, intermediate, dropout, norm_first=False, activation="gelu",
                                    layer_norm_eps=layer_norm_eps)
            for _ in range(num_layers)
        )
        self._init_like_bert(0.02)

    def _init_like_bert(self, std: float) -> None:
        # Random weights of BERT's scale (initializer_range 0.02): timing only.
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        keep = input_ids != 0  # [B,T] true for real tokens
        padding = keep.logical_not()
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, padding)
        weights = keep.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1)


def hf_bert_to_peer_name(hf_name: str) -> str | None:
    """Maps a Hugging Face BertModel tensor name onto MiniLM's; None for tensors MiniLM lacks
    (the pooler, which sentence-transformers' mean pooling never uses, and the position_ids buffer)."""
    if hf_name.startswith("pooler.") or hf_name == "embeddings.position_ids":
        return None
    name = (
        hf_name.replace("embeddings.word_embeddings.", "embeddings.word.")
        .replace("embeddings.position_embeddings.", "embeddings.position.")
        .replace("embeddings.token_type_embeddings.", "embeddings.token_type.")
        .replace("embeddings.LayerNorm.", "embeddings.norm.")
    )
    if not name.startswith("encoder.layer."):
        return name
    _, _, index, rest = name.split(".", 3)
    rest = (
        rest.replace("attention.self.", "")
        .replace("attention.output.dense.", "attention_output.")
        .replace("attention.output.LayerNorm.", "attention_norm.")
        .replace("intermediate.dense.", "intermediate.")
        .replace("output.dense.", "output.")
        .replace("output.LayerNorm.", "output_norm.")
    )
    return f"layers.{index}.{rest}"


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    name: str
    make: Callable[[], nn.Module]
    input_shape: tuple[int, ...]  # one sample
    input_kind: str  # "float" (random normal) or "token_ids" (random int64 ids)
    hone_parameters: int  # what `hone bench NAME --json` reports as "parameters"
    hone_buffer_elements: int


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("mlp", lambda: Mlp(in_features=math.prod(FASHION_MNIST_SHAPE), out_features=FASHION_MNIST_CLASSES),
                 FASHION_MNIST_SHAPE, "float", 235_146, 0),
        ZooEntry("cnn", lambda: ResNetCnn(FASHION_MNIST_SHAPE[0], FASHION_MNIST_CLASSES), FASHION_MNIST_SHAPE, "float",
                 308_074, 1_353),
        ZooEntry("mobilenet", lambda: MobileNetCnn(FASHION_MNIST_SHAPE[0], FASHION_MNIST_CLASSES), FASHION_MNIST_SHAPE,
                 "float", 67_338, 1_929),
        ZooEntry("transformer", lambda: TransformerClassifier(FASHION_MNIST_SHAPE, FASHION_MNIST_CLASSES),
                 FASHION_MNIST_SHAPE, "float", 71_370, 0),
        ZooEntry("lstm", lambda: LstmForecaster(GOLDSILVER_FEATURES, output_size=GOLDSILVER_OUTPUTS),
                 (GOLDSILVER_WINDOW, GOLDSILVER_FEATURES), "float", 50_753, 0),
        ZooEntry("attention", lambda: AttentionForecaster(GOLDSILVER_FEATURES, output_size=GOLDSILVER_OUTPUTS),
                 (GOLDSILVER_WINDOW, GOLDSILVER_FEATURES), "float", 42_369, 0),
        # 22,713,216 in HF's BertModel less its pooler (384*384 + 384 = 147,840), which hone leaves out.
        ZooEntry("minilm", MiniLM, (MINILM_SEQUENCE,), "token_ids", 22_565_376, 0),
    ]
}


def build(name: str, seed: int = 0) -> nn.Module:
    """The peer of hone's `name` with random (seeded) weights, in eval mode, on the CPU in fp32."""
    if name not in ZOO:
        raise KeyError(f"unknown model '{name}'; valid models: {', '.join(ZOO)}")
    torch.manual_seed(seed)
    return ZOO[name].make().eval()


def make_input(name: str, batch: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
               seed: int = 0) -> torch.Tensor:
    """A random input batch of the model's shape: normal floats, or token ids for minilm (timing only)."""
    entry = ZOO[name]
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, *entry.input_shape)
    if entry.input_kind == "token_ids":
        low, high = MINILM_TOKEN_RANGE
        x = torch.randint(low, high, shape, generator=generator, dtype=torch.int64)
    else:
        x = torch.randn(shape, generator=generator).to(dtype)
    return x.to(device)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_buffer_elements(model: nn.Module) -> int:
    return sum(b.numel() for b in model.buffers())
