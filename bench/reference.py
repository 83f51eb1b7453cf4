#!/usr/bin/env python3
"""PyTorch eager reference for `banbench bench`: the same models, batches, optimiser, losses and
step kinds, timed the same way, so that bench/side-by-side.sh can print their ratio.

    python bench/reference.py PRESET [--device cpu|cuda] [--steps N] [--data DIR] [--threads N]

PRESET is a banbench preset of one chain (bench/presets/*.toml); this script reads the fields
banbench reads, with banbench's defaults (src/spec), and refuses what it does not mirror. It
prints one JSON object per step kind, with the keys `banbench bench --json` prints:

  train-labels  a teacher's SGD step on labels (cross-entropy)
  train-ban     a student's SGD step on the preset's control (BAN: cross-entropy to the
                teacher's softmax; BAN+L: that plus the labels'), the teacher's forward in eval
                mode under no_grad
  inference     one evaluation pass in eval mode under no_grad: a vision preset's test split in
                batches of max(batch, 256) (as banbench's vision::predict), a language model's
                validation and test splits in eval_batch_size rows (as task::language::evaluate)

The models are built layer for layer as src/models/*.rs and src/lm/model.rs build them (same
convolutions, batch norms, widths, pooling, heads, dropout; the printed `parameters` must equal
banbench's). Initialisation differs and does not change speed. Timing: WARM_UP untimed batches,
then `steps` timed ones, each step reading its loss (`.item()`) as banbench does; inference is
one timed pass after an untimed one. Images are random uint8 pixels gathered, scaled and
normalised per batch on the host, as banbench's batcher does (the bench presets turn
augmentation off); a language model reads the preset's corpus directory.
"""

import argparse
import json
import math
import os
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

WARM_UP = 3  # src/bench.rs WARM_UP

# Image shape and classes of each data source (src/data).
SHAPES = {
    "embedded": (1, 28, 28, 10),
    "idx": (1, 28, 28, 10),
    "cifar10": (3, 32, 32, 10),
    "cifar100": (3, 32, 32, 100),
}
# Test images of each source when data.test_samples is absent.
TEST_SIZES = {"embedded": 2000, "idx": 10000, "cifar10": 10000, "cifar100": 10000}
# Vision schedule defaults (src/spec/vision.rs).
SCHEDULE_DEFAULTS = {"momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 0.0}


def fail(message):
    sys.exit(f"reference.py: {message}")


def checked(section, name, allowed):
    unknown = set(section) - set(allowed)
    if unknown:
        fail(f"[{name}] has {sorted(unknown)}, which this reference does not mirror")


# ---- vision models (src/models, layouts from src/arch) ----


def conv(c_in, c_out, kernel, stride=1):
    """src/models/mod.rs conv: biasless, padded by kernel / 2."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)


class Cnn(nn.Module):
    """src/models/cnn.rs: five conv3x3-BN-ReLU blocks, 2x2 max pools after the 2nd and 4th,
    global average pool, linear head."""

    def __init__(self, width, channels, classes):
        super().__init__()
        w = width
        pairs = [(channels, w), (w, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w)]
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(a, b, 3), nn.BatchNorm2d(b), nn.ReLU()) for a, b in pairs
        )
        self.pool = nn.MaxPool2d(2, 2)
        self.head_pool = nn.AdaptiveAvgPool2d(1)
        self.output = nn.Linear(4 * w, classes)

    def forward(self, x):
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in (1, 3):
                x = self.pool(x)
        return self.output(self.head_pool(x).flatten(1))


class PreactUnit(nn.Module):
    """src/models/preact_resnet.rs PreactUnit: BN-ReLU-conv per planned conv, dropout before
    the last; the projection shortcut reads the pre-activated input."""

    def __init__(self, convs, c_in, c_out, stride, dropout):
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(a) for a, _, _, _ in convs)
        self.convs = nn.ModuleList(conv(a, b, k, s) for a, b, k, s in convs)
        # burn's Dropout returns its input at probability 0.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = conv(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        out, shortcut = x, x
        last = len(self.convs) - 1
        for i, (norm, c) in enumerate(zip(self.norms, self.convs)):
            out = F.relu(norm(out))
            if i == 0 and self.shortcut is not None:
                shortcut = self.shortcut(out)
            if i == last:
                out = self.dropout(out)
            out = c(out)
        return out + shortcut


def preact_layout(spec):
    """src/arch/preact_resnet.rs: PreactLayout::try_new and wide_resnet_layout."""
    if spec["arch"] == "wide-resnet":
        checked(spec, "model", ["arch", "depth", "widen", "dropout"])
        k = spec["widen"]
        n = (spec["depth"] - 4) // 6
        return 16, [16 * k, 32 * k, 64 * k], [n] * 3, None, spec.get("dropout", 0.3)
    checked(spec, "model", ["arch", "depth", "width", "unit", "inner", "stem", "channels", "blocks"])
    bottleneck = spec.get("unit", "basic") == "bottleneck"
    expansion, layers = (4, 3) if bottleneck else (1, 2)
    per_unit = spec.get("width", 1) * expansion
    channels = spec.get("channels") or [16 * per_unit, 32 * per_unit, 64 * per_unit]
    blocks = spec.get("blocks") or [(spec["depth"] - 2) // (3 * layers)] * 3
    inner = None
    if bottleneck:
        inner = spec.get("inner") or [max(c // 4, 1) for c in channels]
    return spec.get("stem", 16), channels, blocks, inner, 0.0


class PreactResnet(nn.Module):
    """src/models/preact_resnet.rs: stem conv3x3, units (strides 1, 2, 2 by stage), BN-ReLU,
    global average pool, linear head."""

    def __init__(self, spec, channels_in, classes):
        super().__init__()
        stem, channels, blocks, inner, dropout = preact_layout(spec)
        self.stem = conv(channels_in, stem, 3)
        units, c_from = [], stem
        for stage in range(3):
            c_to = channels[stage]
            for i in range(blocks[stage]):
                stride = 2 if stage > 0 and i == 0 else 1
                if inner is None:
                    convs = [(c_from, c_to, 3, stride), (c_to, c_to, 3, 1)]
                else:
                    m = inner[stage]
                    convs = [(c_from, m, 1, stride), (m, m, 3, 1), (m, c_to, 1, 1)]
                units.append(PreactUnit(convs, c_from, c_to, stride, dropout))
                c_from = c_to
        self.units = nn.ModuleList(units)
        self.norm = nn.BatchNorm2d(channels[2])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.output = nn.Linear(channels[2], classes)

    def forward(self, x):
        x = self.stem(x)
        for unit in self.units:
            x = unit(x)
        return self.output(self.pool(F.relu(self.norm(x))).flatten(1))


class DenseLayer(nn.Module):
    """src/models/densenet.rs DenseLayer: BN-ReLU-conv1x1 to 4k, BN-ReLU-conv3x3 to k, concat."""

    def __init__(self, c_in, growth):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv(c_in, 4 * growth, 1)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = conv(4 * growth, growth, 3)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return torch.cat([x, out], 1)


class Densenet(nn.Module):
    """src/models/densenet.rs: stem conv3x3 to 2k, dense blocks joined by transitions
    (BN-ReLU-conv1x1 to floor(compression x channels), 2x2 average pool), BN-ReLU, global
    average pool, linear head."""

    def __init__(self, spec, channels_in, classes):
        super().__init__()
        checked(spec, "model", ["arch", "depth", "growth", "compression", "block_layers", "stem"])
        growth = spec["growth"]
        compression = spec.get("compression", 0.5)
        block_layers = spec.get("block_layers") or [(spec["depth"] - 4) // 6] * 3
        channels = spec.get("stem", 2 * growth)
        self.stem = conv(channels_in, channels, 3)
        stages = []
        for b, n in enumerate(block_layers):
            for _ in range(n):
                stages.append(DenseLayer(channels, growth))
                channels += growth
            if b + 1 < len(block_layers):
                out = math.floor(compression * channels)
                stages.append(
                    nn.Sequential(
                        nn.BatchNorm2d(channels), nn.ReLU(), conv(channels, out, 1), nn.AvgPool2d(2, 2)
                    )
                )
                channels = out
        self.stages = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.output = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.output(self.pool(F.relu(self.norm(x))).flatten(1))


def classifier(spec, channels, classes):
    arch = spec["arch"]
    if arch == "cnn":
        checked(spec, "model", ["arch", "width"])
        return Cnn(spec.get("width", 16), channels, classes)
    if arch in ("preact-resnet", "wide-resnet"):
        return PreactResnet(spec, channels, classes)
    if arch == "densenet-bc":
        return Densenet(spec, channels, classes)
    fail(f"arch {arch!r} is not mirrored here")


# ---- language model (src/lm/model.rs LstmLm) ----


class TiedLstm(nn.Module):
    """Embedding (also the output projection), dropout, LSTM layers each followed by dropout
    (burn's Lstm: both biases per gate, as nn.LSTM), logits = h W^T + b."""

    def __init__(self, vocab, hidden, layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstms = nn.ModuleList(nn.LSTM(hidden, hidden, batch_first=True) for _ in range(layers))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_bias = nn.Parameter(torch.zeros(vocab))
        self.hidden = hidden

    def forward(self, tokens, state):
        x = self.dropout(self.embedding(tokens))
        state = state or [None] * len(self.lstms)
        out = []
        for lstm, s in zip(self.lstms, state):
            y, s = lstm(x, s)
            x = self.dropout(y)
            out.append(s)
        logits = x.reshape(-1, self.hidden) @ self.embedding.weight.t() + self.output_bias
        return logits, out


def detach(state):
    return [(h.detach(), c.detach()) for h, c in state]


# ---- losses (src/distill/mod.rs; src/task/language.rs sequence_loss) ----


def soft_nll(teacher_logits, log_q, temperature):
    p = F.softmax(teacher_logits / temperature, 1)
    return -(p * log_q).sum(1).mean()


def loss_of(control, temperature, logits, teacher_logits, labels):
    if control == "label":
        return F.cross_entropy(logits, labels)
    if control == "ban":
        return soft_nll(teacher_logits, F.log_softmax(logits / temperature, 1), temperature)
    if control == "ban+l":
        log_q = F.log_softmax(logits, 1)
        log_q_t = log_q if temperature == 1.0 else F.log_softmax(logits / temperature, 1)
        return F.nll_loss(log_q, labels) + soft_nll(teacher_logits, log_q_t, temperature)
    fail(f"control {control!r} is not mirrored here")


# ---- timing ----


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, warm_up, steps, step):
    """Runs `step(i)` warm_up + steps times; returns (samples, seconds) of the timed ones."""
    samples, started = 0, None
    for i in range(warm_up + steps):
        if i == warm_up:
            sync(device)
            samples, started = 0, time.perf_counter()
        samples += step(i)
    sync(device)
    return samples, time.perf_counter() - started


def params(model):
    return sum(p.numel() for p in model.parameters())


def record(kind, model, parameters, control, unit, batch, batches, samples, seconds):
    line = {"kind": kind, "model": model, "parameters": parameters}
    if control is not None:
        line["control"] = control
    line["unit"] = unit
    if batch is not None:
        line.update(batch=batch, batches=batches)
    line.update(samples=samples, seconds=seconds, per_sec=samples / seconds)
    return line


# ---- vision ----


def vision(preset, args, device):
    data = preset["data"]
    checked(data, "data", ["source", "path", "labels", "train_samples", "test_samples",
                           "validation_samples", "crop_padding", "horizontal_flip"])
    if data.get("crop_padding", 0) or data.get("horizontal_flip", False):
        fail("augmentation is not mirrored: set crop_padding = 0, horizontal_flip = false")
    channels, height, width, classes = SHAPES[data["source"]]
    if data["source"] == "cifar100" and data.get("labels") == "coarse":
        classes = 20
    schedule = {**SCHEDULE_DEFAULTS, **preset["schedule"]}
    batch = schedule["batch_size"]
    gens = preset.get("generations", {})
    control = gens.get("control", "ban")
    temperature = gens.get("temperature", 1.0)
    teacher_spec = preset["teacher"]
    student_spec = preset.get("student", teacher_spec)
    train_len = data.get("train_samples") or 50000
    evaluated = (data.get("test_samples") or TEST_SIZES[data["source"]]) + data.get(
        "validation_samples", 0
    )
    gen = torch.Generator().manual_seed(preset.get("seed", 0))
    train_images = torch.randint(0, 256, (train_len, channels, height, width), dtype=torch.uint8, generator=gen)
    train_labels = torch.randint(0, classes, (train_len,), generator=gen)
    test_images = torch.randint(0, 256, (evaluated, channels, height, width), dtype=torch.uint8, generator=gen)
    scaled = train_images[:4096].float() / 255
    mean = scaled.mean((0, 2, 3)).view(1, -1, 1, 1)
    std = scaled.std((0, 2, 3)).view(1, -1, 1, 1)
    order = torch.randperm(train_len, generator=gen)

    def images(u8):
        # The host-side batch: scale, normalise, upload (banbench's Batcher and from_data).
        return ((u8.float() / 255 - mean) / std).to(device)

    teacher = classifier(teacher_spec, channels, classes).to(device).eval()
    out = []
    for kind, spec, ctl in [("train-labels", teacher_spec, "label"), ("train-ban", student_spec, control)]:
        model = classifier(spec, channels, classes).to(device).train()
        opt = torch.optim.SGD(
            model.parameters(),
            lr=schedule["lr"],
            momentum=schedule["momentum"],
            dampening=schedule["dampening"],
            nesterov=schedule["nesterov"],
            weight_decay=schedule["weight_decay"],
        )
        batches = train_len // batch

        def step(i):
            idx = order[(i % batches) * batch:(i % batches + 1) * batch]
            x, y = images(train_images[idx]), train_labels[idx].to(device)
            t = None
            if ctl != "label":
                with torch.no_grad():
                    t = teacher(x)
            logits = model(x)
            loss = loss_of(ctl, temperature, logits, t, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
            (logits.argmax(1) == y).sum().item()
            return len(idx)

        samples, seconds = timed(device, WARM_UP, args.steps, step)
        out.append(record(kind, spec["arch"], params(model), ctl, "images", batch, args.steps, samples, seconds))

    chunk = max(batch, 256)

    def evaluate(_):
        with torch.no_grad():
            for start in range(0, evaluated, chunk):
                logits = teacher(images(test_images[start:start + chunk])).cpu()
                F.softmax(logits, 1).argmax(1)
        return evaluated

    samples, seconds = timed(device, 1, 1, evaluate)
    out.append(record("inference", teacher_spec["arch"], params(teacher), None, "images", None, None, samples, seconds))
    return out


# ---- language model ----


def read_split(path):
    tokens = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if words:
                tokens.extend(words)
                tokens.append("<eos>")
    return tokens


def corpus(dir, max_tokens):
    """src/lm/corpus.rs Corpus::load: vocabulary from the training split plus <unk>."""
    train = read_split(os.path.join(dir, "ptb.train.txt"))
    ids = {}
    for w in train + ["<unk>"]:
        ids.setdefault(w, len(ids))
    splits = [train] + [read_split(os.path.join(dir, f"ptb.{s}.txt")) for s in ("valid", "test")]
    splits = [[ids.get(w, ids["<unk>"]) for w in s][:max_tokens] for s in splits]
    return len(ids), splits


def batchify(tokens, rows):
    """src/lm/corpus.rs Batches::new: `rows` contiguous rows, the tail dropped."""
    n = len(tokens) // rows
    return torch.tensor(tokens[: rows * n]).view(rows, n)


def windows(rows, bptt):
    n = rows.shape[1]
    for start in range(0, n - 1, bptt):
        steps = min(bptt, n - 1 - start)
        yield rows[:, start:start + steps], rows[:, start + 1:start + 1 + steps]


def language(preset, args, device):
    c = preset["corpus"]
    model_spec = preset["model"]
    checked(model_spec, "model", ["arch", "layers", "hidden", "dropout"])
    if model_spec["arch"] != "lstm":
        fail("only the tied LSTM is mirrored")
    s = preset["schedule"]
    batch, bptt = s["batch_size"], s.get("bptt", 35)
    eval_batch = s.get("eval_batch_size", 10)
    vocab, (train, valid, test) = corpus(args.data or c["path"], c.get("max_tokens") or 10**12)
    rows = batchify(train, batch)
    train_windows = [(x, y.reshape(-1)) for x, y in windows(rows, bptt)]

    def build():
        return TiedLstm(vocab, model_spec["hidden"], model_spec.get("layers", 1), model_spec.get("dropout", 0.0)).to(device)

    teacher = build().eval()
    out = []
    for kind, with_teacher in [("train-labels", False), ("train-ban", True)]:
        model = build().train()
        # Plain SGD with the global gradient norm clipped (src/task/language.rs).
        opt = torch.optim.SGD(model.parameters(), lr=s["lr"])
        state = {"student": None, "teacher": None}

        def step(i):
            w = i % len(train_windows)
            if w == 0:
                state.update(student=None, teacher=None)
            # Each window is uploaded as banbench's window_tensors does.
            x, y = (t.to(device) for t in train_windows[w])
            t = None
            if with_teacher:
                with torch.no_grad():
                    t, state["teacher"] = teacher(x, state["teacher"])
            logits, next_state = model(x, state["student"])
            state["student"] = detach(next_state)
            loss = loss_of("ban+l" if with_teacher else "label", 1.0, logits, t, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
            opt.step()
            loss.item()
            return y.numel()

        samples, seconds = timed(device, WARM_UP, args.steps, step)
        out.append(record(kind, "lstm", params(model), "BAN+L" if with_teacher else "labels",
                          "tokens", batch, args.steps, samples, seconds))

    eval_splits = [list(windows(batchify(split, eval_batch), bptt)) for split in (valid, test)]

    def evaluate(_):
        n = 0
        with torch.no_grad():
            for split in eval_splits:
                state = None
                for x, y in split:
                    x, y = x.to(device), y.reshape(-1).to(device)
                    logits, state = teacher(x, state)
                    (logits.argmax(1) != y).sum().item()
                    F.log_softmax(logits, 1).gather(1, y.view(-1, 1)).cpu()
                    n += y.numel()
        return n

    samples, seconds = timed(device, 1, 1, evaluate)
    out.append(record("inference", "lstm", params(teacher), None, "tokens", None, None, samples, seconds))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--steps", type=int, default=20, help="timed training batches per kind")
    p.add_argument("--data", help="the preset's corpus directory, as banbench bench --data")
    p.add_argument("--threads", type=int, help="intra-op threads [default: LibTorch's own default]")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.preset, "rb") as f:
        preset = tomllib.load(f)
    device = torch.device(args.device)
    # banbench sets cuDNN's benchmark mode on CUDA (src/device.rs); the reference does the same.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    task = language if "corpus" in preset else vision
    for line in task(preset, args, device):
        line = {"preset": preset["name"], "device": f"torch-{device.type}", **line,
                "threads": torch.get_num_threads(), "torch": torch.__version__}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
