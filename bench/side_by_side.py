#!/usr/bin/env python3
"""Runs bench/reference.py (PyTorch eager) and `banbench bench --json` on the same presets in
alternating rounds and prints their throughputs and ratio per step kind as a markdown table.
bench/side-by-side.sh builds what this needs and calls it; see there for the options.

Each round runs, for every preset, the reference and banbench on every requested device one
after the other (the order reversed every other round), so that a slow spell of a shared
machine hits both sides. The table shows each side's best round and their ratio, and the ratio
within each round. Nothing here judges a number: targets are read off the table.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = {
    "train-labels": "train step, labels",
    "train-ban": "train step, BAN (with teacher)",
    "inference": "inference (eval mode)",
}


def write_corpus(dir, seed=1):
    """A corpus in the Mikolov form whose training split has exactly 10,000 distinct tokens
    (9,998 words, <eos> and <unk>), Penn Treebank's vocabulary size; 20-word sentences."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(9998)]
    os.makedirs(dir, exist_ok=True)

    def split(name, tokens, cover):
        stream = (words if cover else []) + [rng.choice(words) for _ in range(tokens)]
        lines = [" ".join(stream[i:i + 20]) for i in range(0, len(stream), 20)]
        with open(os.path.join(dir, f"ptb.{name}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")

    split("train", 52000, True)
    split("valid", 20000, False)
    split("test", 20000, False)


def data_dir(preset_path, args):
    """The --data directory of a preset, and whether the reference reads it too (a corpus; the
    reference's images are random pixels of the preset's shape)."""
    with open(preset_path, "rb") as f:
        preset = tomllib.load(f)
    if "corpus" in preset:
        return args.corpus, True
    if preset.get("data", {}).get("source", "").startswith("cifar"):
        return args.cifar, False
    return None, False


def run(command, env=None):
    print("$ " + " ".join(command), flush=True)
    p = subprocess.run(command, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit(f"side_by_side.py: {command[0]} failed with exit code {p.returncode}")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    for line in lines:
        print(json.dumps(line), flush=True)
    return lines


def reference_device(device):
    """The PyTorch device a banbench device is compared with: cuda:N for cuda:N, else the CPU."""
    if device == "cuda":
        return "cuda:0"
    return device if device.startswith("cuda:") else "cpu"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="cnn-12:40,wrn-16-4:10,densenet-bc-40-12:10,preact-resnet-164:6,lstm:40",
                   help="NAME[:STEPS], comma-separated: a preset under bench/presets/ (or a path) and "
                        "its timed training batches per kind (about a minute a side on 2 cores)")
    p.add_argument("--devices", default="flex,tch-cpu", help="banbench devices: flex, tch-cpu, cuda[:N]")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, help="timed training batches per kind, for every preset")
    p.add_argument("--flex-bin", required=True, help="banbench built without LibTorch")
    p.add_argument("--tch-bin", required=True, help="banbench built with --features tch")
    p.add_argument("--cifar", required=True, help="CIFAR binary files (banbench synthetic-cifar)")
    p.add_argument("--corpus", required=True, help="a corpus directory (--write-corpus)")
    p.add_argument("--write-corpus", action="store_true", help="write --corpus and exit")
    args = p.parse_args()
    if args.write_corpus:
        write_corpus(args.corpus)
        return
    steps = {}
    for item in args.presets.split(","):
        name, _, n = item.partition(":")
        path = name if name.endswith(".toml") else os.path.join(HERE, "presets", name + ".toml")
        steps[path] = args.steps or int(n or 10)
    presets = list(steps)
    devices = args.devices.split(",")
    # One reference per kind of hardware the banbench devices use.
    references = sorted({reference_device(d) for d in devices})
    results = []  # (round, preset, side, device, line)
    for r in range(args.rounds):
        print(f"# round {r + 1} of {args.rounds}", flush=True)
        for preset in presets:
            data, reference_reads_data = data_dir(preset, args)
            jobs = [("pytorch", d) for d in references] + [("banbench", d) for d in devices]
            if r % 2:
                jobs.reverse()
            for side, device in jobs:
                if side == "pytorch":
                    command = [sys.executable, os.path.join(HERE, "reference.py"), preset,
                               "--device", device, "--steps", str(steps[preset])]
                    if reference_reads_data:
                        command += ["--data", data]
                else:
                    binary = args.flex_bin if device == "flex" else args.tch_bin
                    command = [binary, "bench", preset, "--device", device, "--json",
                               "--steps", str(steps[preset])]
                    if data:
                        command += ["--data", data]
                for line in run(command):
                    results.append((r, preset, side, device, line))
    print(table(results, presets, devices, args.rounds))
    mismatched = [(p, d, l["kind"]) for p, d, l, ref in pairs(results) if l["parameters"] != ref["parameters"]]
    if mismatched:
        sys.exit(f"side_by_side.py: parameter counts differ from the reference's: {mismatched}")


def pairs(results):
    """Each banbench line with the reference line of the same round, preset and kind."""
    refs = {(r, p, d, l["kind"]): l for r, p, s, d, l in results if s == "pytorch"}
    for r, p, s, d, l in results:
        if s == "banbench":
            yield p, d, l, refs[(r, p, reference_device(d), l["kind"])]


def rate(x):
    return f"{x:,.0f}"


def table(results, presets, devices, rounds):
    versions = {l.get("torch") for *_, l in results if "torch" in l}
    threads = {l.get("threads") for *_, l in results if "threads" in l}
    out = [
        "",
        f"PyTorch eager {', '.join(sorted(versions))} ({', '.join(map(str, sorted(threads)))} threads) vs "
        f"banbench bench; each side's best of {rounds} rounds, throughput in images/s (tok/s: target tokens/s)",
        "",
        "| model | step | device | PyTorch eager | banbench | ratio | ratio per round |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset in presets:
        for device in devices:
            for kind in KINDS:
                mine = [(r, l) for r, p, s, d, l in results if (p, s, d, l["kind"]) == (preset, "banbench", device, kind)]
                ref_device = reference_device(device)
                theirs = {r: l for r, p, s, d, l in results if (p, s, d, l["kind"]) == (preset, "pytorch", ref_device, kind)}
                if not mine:
                    continue
                best_mine = max(l["per_sec"] for _, l in mine)
                best_theirs = max(l["per_sec"] for l in theirs.values())
                per_round = ", ".join(f"{l['per_sec'] / theirs[r]['per_sec']:.2f}x" for r, l in mine)
                first = mine[0][1]
                unit = " tok/s" if first["unit"] == "tokens" else ""
                batch = f", batch {first['batch']}" if "batch" in first else ""
                out.append(
                    f"| {first['model']} ({first['parameters']:,} parameters{batch}) | {KINDS[kind]} | {device} "
                    f"| {rate(best_theirs)}{unit} | {rate(best_mine)}{unit} | **{best_mine / best_theirs:.2f}x** | {per_round} |"
                )
    return "\n".join(out)


if __name__ == "__main__":
    main()
