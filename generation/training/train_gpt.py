"""Train a small GPT-2 on the prepared jokes.

Run (CPU smoke): ``python -m generation.training.train_gpt --data data/prepared --tokenizer
data/prepared/tokenizer --out models/gpt --run-dir runs/gpt --n-layer 2 --n-embd 128 --n-head 4
--max-minutes 2``; on a GPU add ``--device cuda`` and a real size (see ``--help``).

Sequence format: every training example is one joke, ``<|endoftext|> joke <|endoftext|>``,
right-padded with ``<pad>`` (label -100). The bot prompts with ``<|endoftext|> prompt`` and stops at
``<|endoftext|>``, so generation sees exactly what training saw: a joke starting at position 0 after
the bos token. Jokes are not packed: with absolute positions, packing would train jokes at arbitrary
offsets while the bot always starts at 0. Padding waste is kept small by length bucketing (batches
are cut from length-sorted chunks of 50 batches, then shuffled). Right padding under a causal mask
means real tokens never attend to pads, so no attention mask is passed and SDPA keeps its fast
causal kernel.

Data path: every split is tokenized once into a padded int64 tensor that lives on the device; a step
only indexes it, so there is no per-example Python work in the loop.

Optimisation: AdamW (betas 0.9/0.95, weight decay on matrices only), linear warmup then cosine decay
to ``--min-lr-ratio`` of the peak. The schedule's progress is the larger of step/``--max-steps`` and
elapsed/``--max-minutes``, so a time-budgeted run still anneals fully before the budget runs out.
Both limits are totals for the run, counting what was done before a ``--resume``. bf16 autocast on
CUDA and CPU (``--precision fp32`` turns it off), gradient clipping at ``--grad-clip``.

Fine-tuning: ``--init-from models/gpt`` starts from a saved model folder (its size wins over the
size flags; a fresh optimizer and schedule), and ``--oversample humornet=4`` repeats one source's
train jokes (the ``source`` field that ``generation.training.corpus`` writes) to shift the data
mix, e.g.
toward narrative jokes when the open data is mostly dialogue.

Outputs: the best checkpoint by validation loss goes to ``--out`` (``save_pretrained`` with
safetensors in ``--save-dtype``, tokenizer files, a GenerationConfig with bos/eos/pad ids, and
``train_summary.json``); ``--run-dir`` gets ``trainer_state.pt`` (fp32 weights, optimizer, step,
elapsed time, RNG and epoch position, for ``--resume``), ``args.json``, ``metrics.json`` and
``loss.png``. Validation reports loss per token and bits per character (the total NLL of all
predicted tokens, final ``<|endoftext|>`` included, divided by the characters of the jokes),
which is comparable across tokenizers. A run refuses to start if the saved weights would exceed
``--max-weights-mb`` (40 MB by default).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoTokenizer, GenerationConfig, GPT2Config, GPT2LMHeadModel

from generation.training.corpus import read_jsonl_rows, read_jsonl_texts

SAMPLE_PROMPTS = ("", "Штирлиц", "- Доктор,", "Вовочка")
STATE_FILE = "trainer_state.pt"
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class TokenizedSplit:
    tokens: torch.Tensor  # [N, L] int64, right-padded with pad id
    lengths: np.ndarray  # [N] real lengths (bos + joke + eos, possibly truncated)
    chars: int  # characters of the jokes, for bits per character
    truncated: int  # jokes cut to fit n_positions


def tokenize_split(
    texts: list[str], tokenizer: Any, max_len: int, device: torch.device | str = "cpu"
) -> TokenizedSplit:
    """Tokenize jokes once into ``<eot> joke <eot>`` rows of a padded tensor."""
    eot, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    seqs = [[eot, *row, eot][:max_len] for row in ids]
    truncated = sum(1 for row in ids if len(row) + 2 > max_len)
    width = max((len(s) for s in seqs), default=1)
    arr = np.full((len(seqs), width), pad, dtype=np.int64)
    lengths = np.zeros(len(seqs), dtype=np.int64)
    for i, s in enumerate(seqs):
        arr[i, : len(s)] = s
        lengths[i] = len(s)
    return TokenizedSplit(
        tokens=torch.from_numpy(arr).to(device),
        lengths=lengths,
        chars=sum(len(t) for t in texts),
        truncated=truncated,
    )


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Index batches for one epoch: shuffled, length-bucketed in chunks of 50 batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _batch(
    split: TokenizedSplit, idx: np.ndarray, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    width = int(split.lengths[idx].max())
    width = min(split.tokens.shape[1], -(-width // 8) * 8)  # multiple of 8 for tensor cores
    index = torch.from_numpy(idx).to(split.tokens.device, non_blocking=True)
    x = split.tokens.index_select(0, index)[:, :width]
    labels = x.masked_fill(x == pad_id, -100)
    return x, labels


# ---------------------------------------------------------------------------------------------
# Model helpers
# ---------------------------------------------------------------------------------------------


def build_model(args: argparse.Namespace, tokenizer: Any) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def weights_mb(model: torch.nn.Module, dtype: torch.dtype) -> float:
    """Size of the saved weights: unique parameters (tied ones once) times the element size."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    for b in model.buffers():
        n += b.numel()
    return n * torch.tensor([], dtype=dtype).element_size() / 1e6


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lm_loss(
    model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    logits = model(input_ids=x).logits
    return F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction=reduction,
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: TokenizedSplit,
    pad_id: int,
    batch_size: int,
    amp: torch.autocast | None,
) -> dict[str, float]:
    """Validation loss per token and bits per character."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = np.argsort(split.lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        x, labels = _batch(split, order[i : i + batch_size], pad_id)
        with amp if amp is not None else _nullctx():
            total += float(lm_loss(model, x, labels, reduction="sum"))
        count += int((labels[:, 1:] != -100).sum())
    model.train(was_training)
    loss = total / max(1, count)
    return {"loss": loss, "bpc": total / math.log(2) / max(1, split.chars), "tokens": count}


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@torch.no_grad()
def sample(
    model: GPT2LMHeadModel,
    tokenizer: Any,
    prompts: tuple[str, ...] = SAMPLE_PROMPTS,
    max_new_tokens: int = 48,
    seed: int = 0,
) -> list[str]:
    """A few sampled jokes, one per prompt, for eyeballing progress."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[str] = []
    for prompt in prompts:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]
        x = torch.tensor([ids], device=device)
        y = model.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            do_sample=True,
            top_p=0.95,
            temperature=0.8,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        out.append(tokenizer.decode(y[0], skip_special_tokens=True))
    model.train(was_training)
    return out


def generation_config(tokenizer: Any, max_new_tokens: int = 48) -> GenerationConfig:
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
    )


def save_checkpoint(
    model: GPT2LMHeadModel,
    tokenizer: Any,
    out: Path,
    dtype: torch.dtype,
    summary: dict[str, Any],
) -> None:
    """Save a loadable model folder: weights in ``dtype``, tokenizer, generation config."""
    out.mkdir(parents=True, exist_ok=True)
    clone = copy.deepcopy(model).to(device="cpu", dtype=dtype)  # deepcopy keeps the weight tying
    clone.generation_config = generation_config(tokenizer)
    clone.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "train_summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def plot_curves(
    history: list[dict[str, Any]], train_curve: list[tuple[int, float]], path: Path
) -> None:
    try:  # plotting is a convenience: a machine without matplotlib still trains and saves
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return

    fig, ax = plt.subplots(figsize=(7, 4))
    if train_curve:
        steps, losses = zip(*train_curve, strict=True)
        ax.plot(steps, losses, label="train loss (running mean)", alpha=0.8)
    if history:
        ax.plot([h["step"] for h in history], [h["val_loss"] for h in history], "o-", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per token (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def lr_at(step: int, progress: float, args: argparse.Namespace) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace, device: torch.device):
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs: dict[str, Any] = {"lr": args.lr, "betas": (0.9, 0.95), "eps": 1e-8}
    if device.type == "cuda":
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def oversampled(rows: list[dict[str, Any]], specs: list[str]) -> list[str]:
    """Train texts with the jokes of some sources repeated, ``specs`` like ``["humornet=4"]``.

    Why: the open data is 94% dialogue while people (and the CleanComedy gold set) tell mostly
    narrative jokes; repeating the few narrative sources shifts the mix without new data.
    """
    weights: dict[str, int] = {}
    for spec in specs:
        name, sep, k = spec.partition("=")
        if not sep or not k.isdigit() or int(k) < 1:
            raise SystemExit(f"--oversample wants SOURCE=K with K >= 1, got {spec!r}")
        weights[name] = int(k)
    known = {row.get("source", "") for row in rows}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise SystemExit(f"--oversample: no train jokes from {', '.join(unknown)}")
    return [row["text"] for row in rows for _ in range(weights.get(row.get("source", ""), 1))]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Train a small GPT-2 on the prepared jokes")
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--tokenizer", type=Path, default=Path("data/prepared/tokenizer"))
    ap.add_argument("--out", type=Path, default=Path("models/gpt"))
    ap.add_argument("--run-dir", type=Path, default=Path("runs/gpt"))
    ap.add_argument("--resume", type=Path, default=None, help="run dir with trainer_state.pt")
    ap.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="fine-tune from this model folder (its size wins over the size flags)",
    )
    ap.add_argument(
        "--oversample",
        action="append",
        default=[],
        metavar="SOURCE=K",
        help="repeat a source's train jokes K times ('source' of train.jsonl); repeatable",
    )
    # model
    ap.add_argument("--n-layer", type=int, default=8)
    ap.add_argument("--n-embd", type=int, default=384)
    ap.add_argument("--n-head", type=int, default=6)
    ap.add_argument("--n-positions", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.1)
    # optimisation
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--eval-every", type=int, default=500, help="steps between validations")
    ap.add_argument("--eval-batch-size", type=int, default=256)
    ap.add_argument("--log-every", type=int, default=20)
    # runtime
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--save-dtype", choices=["bfloat16", "float32"], default="bfloat16")
    ap.add_argument("--max-weights-mb", type=float, default=40.0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--samples", type=int, default=len(SAMPLE_PROMPTS), help="samples per eval")
    ap.add_argument(
        "--state-every-minutes",
        type=float,
        default=2.0,
        help="min minutes between trainer_state.pt saves at evals (always saved at the end)",
    )
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.max_steps is None and args.max_minutes is None:
        args.max_steps = 1000
    return args


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run training; returns the metrics dict also written to ``run_dir/metrics.json``."""
    t_start = time.monotonic()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if args.precision == "bf16"
        else None
    )
    tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer))
    pad_id = tokenizer.pad_token_id
    if pad_id is None or tokenizer.eos_token_id is None or pad_id == tokenizer.eos_token_id:
        raise SystemExit("the tokenizer needs distinct eos and pad tokens")

    state: dict[str, Any] | None = None
    if args.resume is not None:
        state = torch.load(args.resume / STATE_FILE, map_location="cpu", weights_only=False)
        model = GPT2LMHeadModel(GPT2Config.from_dict(state["config"]))
        model.load_state_dict(state["model"])
    elif args.init_from is not None:
        drop = args.dropout
        model = GPT2LMHeadModel.from_pretrained(
            str(args.init_from),
            dtype=torch.float32,  # bf16 weights on disk; train and keep the master copy in fp32
            resid_pdrop=drop,
            embd_pdrop=drop,
            attn_pdrop=drop,
        )
    else:
        model = build_model(args, tokenizer)
    save_dtype = DTYPES[args.save_dtype]
    size_mb = weights_mb(model, save_dtype)
    if size_mb > args.max_weights_mb:
        raise SystemExit(
            f"saved weights would be {size_mb:.1f} MB in {args.save_dtype}, over "
            f"--max-weights-mb {args.max_weights_mb}; shrink n_embd/n_layer or the vocab"
        )
    model.to(device)
    model.train()
    n_positions = model.config.n_positions

    train_texts = oversampled(read_jsonl_rows(args.data / "train.jsonl"), args.oversample)
    train_split = tokenize_split(train_texts, tokenizer, n_positions, device)
    valid_split = tokenize_split(
        read_jsonl_texts(args.data / "valid.jsonl"), tokenizer, n_positions, device
    )
    optimizer = make_optimizer(model, args, device)

    step, epoch, pos, elapsed_before = 0, 0, 0, 0.0
    best = math.inf
    history: list[dict[str, Any]] = []
    train_curve: list[tuple[int, float]] = []
    tokens_seen = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        elapsed_before, best = state["elapsed"], state["best"]
        history, train_curve = state["history"], state["train_curve"]
        tokens_seen = state.get("tokens_seen", 0)
        torch.set_rng_state(state["torch_rng"])

    args.run_dir.mkdir(parents=True, exist_ok=True)
    (args.run_dir / "args.json").write_text(
        json.dumps(
            {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, indent=2
        )
        + "\n"
    )
    info = {
        "device": str(device),
        "params": n_params(model),
        "weights_mb": round(size_mb, 2),
        "save_dtype": args.save_dtype,
        "vocab_size": model.config.vocab_size,
        "n_layer": model.config.n_layer,
        "n_embd": model.config.n_embd,
        "n_head": model.config.n_head,
        "n_positions": n_positions,
        "train_jokes": len(train_split.lengths),
        "train_tokens": int(train_split.lengths.sum()),
        "valid_jokes": len(valid_split.lengths),
        "truncated_train": train_split.truncated,
        "torch": torch.__version__,
    }
    print(json.dumps(info, ensure_ascii=False), flush=True)

    max_seconds = args.max_minutes * 60 if args.max_minutes is not None else None
    t0 = time.monotonic()

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - t0

    def progress() -> float:
        fr = 0.0
        if args.max_steps:
            fr = max(fr, step / args.max_steps)
        if max_seconds:
            fr = max(fr, elapsed() / max_seconds)
        return fr

    last_state_save = [time.monotonic()]
    saved_state_step = [-1]

    def run_eval(final: bool = False) -> None:
        nonlocal best
        metrics = evaluate(model, valid_split, pad_id, args.eval_batch_size, amp)
        recent = [loss for s, loss in train_curve[-5:]]
        entry = {
            "step": step,
            "epoch": epoch,
            "elapsed_s": round(elapsed(), 1),
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": round(sum(recent) / len(recent), 4) if recent else None,
            "val_loss": round(metrics["loss"], 4),
            "val_bpc": round(metrics["bpc"], 4),
            "tokens_seen": tokens_seen,
        }
        improved = metrics["loss"] < best
        if improved:
            best = metrics["loss"]
            save_checkpoint(model, tokenizer, args.out, save_dtype, {**info, **entry})
        entry["best"] = improved
        history.append(entry)
        tqdm.write(
            f"[eval] step {step} val_loss {metrics['loss']:.4f} bpc {metrics['bpc']:.4f}"
            f"{' (best, saved)' if improved else ''}",
            file=sys.stderr,
        )
        for text in sample(model, tokenizer, SAMPLE_PROMPTS[: args.samples], seed=step):
            tqdm.write("  > " + text.replace("\n", " / "), file=sys.stderr)
        if final or time.monotonic() - last_state_save[0] >= args.state_every_minutes * 60:
            save_state()
        write_metrics()

    def save_state() -> None:
        last_state_save[0] = time.monotonic()
        saved_state_step[0] = step
        torch.save(
            {
                "config": model.config.to_dict(),
                "model": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "step": step,
                "epoch": epoch,
                "pos": pos,
                "elapsed": elapsed(),
                "best": best,
                "history": history,
                "train_curve": train_curve,
                "tokens_seen": tokens_seen,
                "torch_rng": torch.get_rng_state(),
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            args.run_dir / STATE_FILE,
        )

    def write_metrics() -> dict[str, Any]:
        wall = elapsed()
        metrics = {
            **info,
            "step": step,
            "elapsed_s": round(wall, 1),
            "tokens_seen": tokens_seen,
            "tokens_per_s": round(tokens_seen / wall, 1) if wall > 0 else None,
            "best_val_loss": best if best < math.inf else None,
            "best_val_bpc": min((h["val_bpc"] for h in history), default=None),
            "history": history,
        }
        (args.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_curves(history, train_curve, args.run_dir / "loss.png")
        return metrics

    def done() -> bool:
        if args.max_steps is not None and step >= args.max_steps:
            return True
        return max_seconds is not None and elapsed() >= max_seconds

    bar = tqdm(
        total=args.max_steps,
        initial=step,
        disable=args.no_progress,
        dynamic_ncols=True,
        mininterval=2.0,
        file=sys.stderr,
    )
    running: list[float] = []
    last_eval_step = step if state is not None else -1
    while not done():
        batches = epoch_batches(train_split.lengths, args.batch_size, args.seed + epoch)
        while pos < len(batches) and not done():
            idx = batches[pos]
            x, labels = _batch(train_split, idx, pad_id)
            pos += 1
            lr = lr_at(step, progress(), args)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with amp if amp is not None else _nullctx():
                loss = lm_loss(model, x, labels)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += int(train_split.lengths[idx].sum())  # real tokens, no pads
            bar.update(1)
            if step % args.log_every == 0 or step == 1:
                running.append(float(loss.detach()))  # one sync per log interval, not per step
                train_curve.append((step, sum(running[-10:]) / len(running[-10:])))
                bar.set_postfix(loss=f"{train_curve[-1][1]:.3f}", lr=f"{lr:.2e}", ep=epoch)
            if args.eval_every and step % args.eval_every == 0:
                run_eval()
                last_eval_step = step
        if pos >= len(batches):
            epoch, pos = epoch + 1, 0
    bar.close()
    if last_eval_step != step:
        run_eval(final=True)
    elif saved_state_step[0] != step:
        save_state()  # the last eval skipped it
    metrics = write_metrics()
    metrics["total_wall_s"] = round(time.monotonic() - t_start, 1)
    print(
        f"done: step {step}, best val_loss {metrics['best_val_loss']:.4f}, "
        f"bpc {metrics['best_val_bpc']}, {metrics['tokens_per_s']} tokens/s, "
        f"weights {size_mb:.1f} MB -> {args.out}",
        flush=True,
    )
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
