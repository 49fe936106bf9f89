"""The taggers: character, bigram and lexicon features -> an encoder -> per-label emissions -> CRF.

Two encoders, chosen by ``TaggerShape.encoder``:

- ``cnn`` (ConvTagger): stacked dilated 3-tap convolutions with residual connections. Every
  position is computed at once, which is what a single CPU core runs fast; the shipped model.
- ``bilstm`` (BiLstmTagger): one bidirectional LSTM layer; sees the whole sentence, but its 100
  sequential steps cap single-thread speed (bench/lstm_probe.py).

Both compute for each sentence of a padded batch exactly what it computes alone, so batched and
unbatched predictions agree. In the BiLSTM the backward direction reverses each sequence within
its own length (a gather with per-row indices), runs a forward LSTM and reverses back, so padding
only ever follows the real characters; the graph exports to ONNX as plain LSTM and GatherElements
nodes (packed sequences do not export well).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from models.features import LEXICON_BITS, PAD_ID
from models.tags import Scheme, transition_constraints

#: Score added to forbidden CRF transitions: large enough to never win, finite so that
#: forward-backward arithmetic stays free of inf - inf.
FORBIDDEN = -1.0e4


ENCODERS = ("cnn", "bilstm")


@dataclass(frozen=True)
class TaggerShape:
    chars: int  # vocabulary sizes
    bigrams: int
    labels: int
    char_dim: int  # bilstm only: the cnn embeds characters straight into its `hidden` channels
    bigram_dim: int
    hidden: int  # bilstm: units per direction; cnn: channels
    dropout: float
    encoder: str = "bilstm"  # checkpoints from before the cnn encoder hold no encoder field
    dilations: tuple[int, ...] = ()  # cnn: one 3-tap convolution layer per dilation


def reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) indices that reverse the first lengths[b] steps of each row; padding stays put.

    Applying the same gather twice restores the original order.
    """
    positions = torch.arange(steps, device=lengths.device).unsqueeze(0)
    last = lengths.unsqueeze(1) - 1
    return torch.where(positions <= last, last - positions, positions)


def gather_steps(values: Tensor, index: Tensor) -> Tensor:
    """Reorder the steps (axis 1) of (B, T) or (B, T, D) values by a (B, T) index."""
    if values.dim() == 3:
        index = index.unsqueeze(2).expand(-1, -1, values.shape[2])
    return values.gather(1, index)


class Crf(nn.Module):
    """Linear-chain CRF scores; forbidden transitions (by the tag scheme) get FORBIDDEN."""

    transition_mask: Tensor
    start_mask: Tensor
    end_mask: Tensor

    def __init__(self, labels: Sequence[str], scheme: Scheme) -> None:
        super().__init__()
        allowed, allowed_start, allowed_end = transition_constraints(labels, scheme)
        size = len(labels)
        self.transitions = nn.Parameter(torch.zeros(size, size))
        self.start = nn.Parameter(torch.zeros(size))
        self.end = nn.Parameter(torch.zeros(size))
        for name, mask in (
            ("transition_mask", allowed),
            ("start_mask", allowed_start),
            ("end_mask", allowed_end),
        ):
            penalty = np.where(mask, 0.0, FORBIDDEN).astype(np.float32)
            self.register_buffer(name, torch.from_numpy(penalty))

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """(transitions[from, to], start, end) with the constraints applied."""
        return (
            self.transitions + self.transition_mask,
            self.start + self.start_mask,
            self.end + self.end_mask,
        )

    def numpy_scores(self) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        transitions, start, end = (score.detach().cpu().numpy() for score in self.scores())
        return transitions, start, end

    def negative_log_likelihood(
        self, emissions: Tensor, allowed: Tensor, lengths: Tensor
    ) -> Tensor:
        """Mean over the batch of -log P(allowed paths | emissions); ``allowed`` is (B, T, K)
        booleans (training.partial): one tag per position gives the usual -log P(gold tags).
        Rows need lengths >= 1."""
        constrained = emissions + torch.where(allowed, 0.0, FORBIDDEN)
        # One forward pass over both: the partition of all paths and of the allowed ones.
        both = self.log_partition(torch.cat([emissions, constrained]), lengths.repeat(2))
        total, gold = both.chunk(2)
        return (total - gold).mean()

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """(B,) log of the summed scores of all tag paths of each row (forward algorithm)."""
        transitions, start, end = self.scores()
        steps = emissions.shape[1]
        mask = torch.arange(steps, device=emissions.device).unsqueeze(0) < lengths.unsqueeze(1)
        alpha = start.unsqueeze(0) + emissions[:, 0]
        for t in range(1, steps):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1)
            alpha = torch.where(mask[:, t : t + 1], step + emissions[:, t], alpha)
        return torch.logsumexp(alpha + end.unsqueeze(0), dim=1)


def window_rows(lengths: Tensor, steps: int, dilation: int) -> Tensor:
    """((B * T + 1) * 3,) row indices into (B * T + 1, C) flattened features: for each position,
    its neighbours at -dilation, 0 and +dilation within its own sentence. A neighbour outside the
    sentence (before its start, or in the padding after its end) is row B * T, kept all zeros;
    that row's own taps are itself, so it stays zero through bias-free layers.
    """
    batch = lengths.shape[0]
    offsets = torch.tensor([-dilation, 0, dilation], device=lengths.device)
    positions = torch.arange(steps, device=lengths.device).view(1, steps, 1) + offsets
    inside = (positions >= 0) & (positions < lengths.view(batch, 1, 1))
    rows = torch.arange(batch, device=lengths.device).view(batch, 1, 1) * steps + positions
    rows = torch.where(inside, rows, batch * steps).reshape(-1)
    return torch.cat([rows, rows.new_full((3,), batch * steps)])


class ConvTagger(nn.Module):
    """forward(chars, bigrams, lexicon, lengths) -> emissions (B, T, labels).

    Features are summed straight into ``hidden`` channels (a character embedding of that width,
    projected bigram embeddings and lexicon bits: a linear layer over their concatenation,
    without the concatenation). Each layer gathers every position's three taps in one Gather
    (see window_rows) and mixes them with one matrix product, then ReLU and a residual sum. The
    layers have no bias, so the all-zero row that stands in for out-of-sentence neighbours stays
    zero, and padding never reaches a real position.
    """

    lexicon_bits: Tensor

    def __init__(self, shape: TaggerShape, labels: Sequence[str], scheme: Scheme) -> None:
        super().__init__()
        if not shape.dilations:
            raise ValueError("the cnn encoder needs at least one dilation")
        self.shape = shape
        width = shape.hidden
        self.char_embedding = nn.Embedding(shape.chars, width, padding_idx=PAD_ID)
        self.bigram_embedding = nn.Embedding(shape.bigrams, shape.bigram_dim, padding_idx=PAD_ID)
        self.bigram_projection = nn.Linear(shape.bigram_dim, width, bias=False)
        ids = torch.arange(2**LEXICON_BITS).unsqueeze(1)
        self.register_buffer("lexicon_bits", ((ids >> torch.arange(LEXICON_BITS)) & 1).float())
        self.lexicon_projection = nn.Linear(LEXICON_BITS, width)
        self.dropout = nn.Dropout(shape.dropout)
        self.convolutions = nn.ModuleList(
            nn.Linear(3 * width, width, bias=False) for _ in shape.dilations
        )
        self.projection = nn.Linear(width, shape.labels)
        self.crf = Crf(labels, scheme)

    def forward(self, chars: Tensor, bigrams: Tensor, lexicon: Tensor, lengths: Tensor) -> Tensor:
        batch, steps = chars.shape
        width = self.shape.hidden
        features = (
            self.char_embedding(chars)
            + self.bigram_projection(self.bigram_embedding(bigrams))
            # Project the 4,096 bit patterns, then look up: the same numbers as projecting the
            # looked-up bits, and the exporter folds the projected table into one constant.
            + nn.functional.embedding(lexicon, self.lexicon_projection(self.lexicon_bits))
        )
        hidden = self.dropout(torch.relu(features)).reshape(batch * steps, width)
        hidden = torch.cat([hidden, hidden.new_zeros(1, width)])
        # Layers of the same dilation share their tap rows (one computation in the graph).
        rows = {
            dilation: window_rows(lengths, steps, dilation) for dilation in self.shape.dilations
        }
        for dilation, convolution in zip(self.shape.dilations, self.convolutions, strict=True):
            taps = hidden[rows[dilation]].reshape(-1, 3 * width)
            hidden = hidden + self.dropout(torch.relu(convolution(taps)))
        emissions: Tensor = self.projection(hidden[: batch * steps])
        return emissions.reshape(batch, steps, self.shape.labels)


class BiLstmTagger(nn.Module):
    """forward(chars, bigrams, lexicon, lengths) -> emissions (B, T, labels).

    One bidirectional layer, laid out for inference speed: the backward direction reverses the
    cheap inputs (ids and lexicon bits) rather than embedded features, works time-major (the
    layout of ONNX's LSTM op, so no transposes of wide tensors), and each direction projects to
    the labels on its own, so only the narrow per-label scores are reversed back. The sum equals
    a projection of the concatenated directions.
    """

    lexicon_bits: Tensor

    def __init__(self, shape: TaggerShape, labels: Sequence[str], scheme: Scheme) -> None:
        super().__init__()
        self.shape = shape
        self.char_embedding = nn.Embedding(shape.chars, shape.char_dim, padding_idx=PAD_ID)
        self.bigram_embedding = nn.Embedding(shape.bigrams, shape.bigram_dim, padding_idx=PAD_ID)
        input_dim = shape.char_dim + shape.bigram_dim + LEXICON_BITS
        # Row i holds the bits of lexicon id i as floats: expanding is one cheap Gather.
        ids = torch.arange(2**LEXICON_BITS).unsqueeze(1)
        self.register_buffer("lexicon_bits", ((ids >> torch.arange(LEXICON_BITS)) & 1).float())
        self.dropout = nn.Dropout(shape.dropout)
        self.forward_lstm = nn.LSTM(input_dim, shape.hidden)
        self.backward_lstm = nn.LSTM(input_dim, shape.hidden)
        self.forward_projection = nn.Linear(shape.hidden, shape.labels)
        self.backward_projection = nn.Linear(shape.hidden, shape.labels, bias=False)
        self.crf = Crf(labels, scheme)

    def _direction(
        self, lstm: nn.LSTM, projection: nn.Linear, chars: Tensor, bigrams: Tensor, lexicon: Tensor
    ) -> Tensor:
        """Per-label scores (T, B, K) of one direction, from batch-major inputs."""
        features = torch.cat(
            [
                self.char_embedding(chars.t()),
                self.bigram_embedding(bigrams.t()),
                nn.functional.embedding(lexicon.t(), self.lexicon_bits),
            ],
            dim=2,
        )
        hidden, _ = lstm(self.dropout(features))
        scores: Tensor = projection(self.dropout(hidden))
        return scores

    def forward(self, chars: Tensor, bigrams: Tensor, lexicon: Tensor, lengths: Tensor) -> Tensor:
        index = reverse_index(lengths, chars.shape[1])
        ahead = self._direction(self.forward_lstm, self.forward_projection, chars, bigrams, lexicon)
        behind = self._direction(
            self.backward_lstm,
            self.backward_projection,
            gather_steps(chars, index),
            gather_steps(bigrams, index),
            gather_steps(lexicon, index),
        )
        return ahead.transpose(0, 1) + gather_steps(behind.transpose(0, 1), index)


Tagger = ConvTagger | BiLstmTagger


def build_tagger(shape: TaggerShape, labels: Sequence[str], scheme: Scheme) -> Tagger:
    if shape.encoder == "cnn":
        return ConvTagger(shape, labels, scheme)
    if shape.encoder == "bilstm":
        return BiLstmTagger(shape, labels, scheme)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {shape.encoder!r}")
