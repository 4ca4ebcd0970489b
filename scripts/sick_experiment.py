"""Train a Siamese sentence encoder from scratch on SICK relatedness (no pretrained vectors) and score it.

Protocol: train on SICK_train, choose every setting (and the epoch) by Pearson's r on SICK_trial, and
score SICK_test_annotated once, only with --test. Run with one thread per library, e.g.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python scripts/sick_experiment.py --data ../shared/data/sick2014 --json runs/sick/x.json

Each epoch prints the training loss and the trial metrics; the weights of the best trial epoch are kept.
The JSON record holds every setting, the per-epoch history, the best trial epoch and its metrics, the
training seconds (training and the per-epoch trial scoring, not the data loading or the test scoring),
and, with --test, the test metrics of the best trial epoch's weights.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinysiam as ts  # noqa: E402
from tinysiam import nn, optim  # noqa: E402
from tinysiam.app.records import portable  # noqa: E402
from tinysiam.data.sick import Vocabulary, load_sick  # noqa: E402
from tinysiam.engine.backend import reuse_freed_memory  # noqa: E402
from tinysiam.evaluation.relatedness import relatedness_metrics  # noqa: E402
from tinysiam.serialization import write_text_atomic  # noqa: E402
from tinysiam.siamese.losses import expected_score, kl_divergence_loss, mse_loss, score_distribution  # noqa: E402
from tinysiam.siamese.text import DistributionHead, ExpL1Head, TextConvTower, TextTwin, pad_batch  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "sick2014"))
    p.add_argument("--head", choices=("distribution", "expl1"), default="distribution")
    p.add_argument("--embed-dim", type=int, default=150)
    p.add_argument("--embed-std", type=float, default=0.1)
    p.add_argument("--channels", type=int, default=100)
    p.add_argument("--widths", default="1,2,3")
    p.add_argument("--pooling", default="max,mean")
    p.add_argument("--out-dim", type=int, default=0, help="0: no projection, the pooled features")
    p.add_argument("--hidden", type=int, default=100, help="the distribution head's hidden units")
    p.add_argument("--head-dropout", type=float, default=0.0, help="dropout on the pair features |u - v|, u * v")
    p.add_argument("--scale", type=float, default=1.0, help="the expl1 head's distance scale")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on the pooled features")
    p.add_argument("--embed-dropout", type=float, default=0.0, help="dropout on the word vectors")
    p.add_argument("--word-dropout", type=float, default=0.0)
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--embed-weight-decay", type=float, default=None, help="default: --weight-decay")
    p.add_argument("--lr-decay", type=float, default=1.0, help="learning rate factor per epoch")
    p.add_argument("--embed-lr", type=float, default=None, help="the embeddings' learning rate (default: --lr; 0 "
                   "keeps them at their random start)")
    p.add_argument("--svd-init", type=int, default=0, help="start the embeddings from an SVD of the positive PMI of "
                   "word co-occurrences in the training sentences within this window (0: random)")
    p.add_argument("--ema", type=float, default=0.99, help="score with an exponential moving average of the weights "
                   "(this decay per step; 0: the weights themselves)")
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--patience", type=int, default=0, help="stop after this many epochs without a better trial r")
    p.add_argument("--swap", action="store_true", help="swap sentences A and B of a random half of each batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=5, help="train this many models (seeds seed*100 + 0, 1, ...) and "
                   "average their predicted scores")
    p.add_argument("--test", action="store_true", help="score the test pairs with the best trial epoch's weights")
    p.add_argument("--json", help="write the record here")
    return p.parse_args(argv)


def build_model(args, vocab_size, rng):
    widths = tuple(int(k) for k in args.widths.split(","))
    tower = TextConvTower(vocab_size, embed_dim=args.embed_dim, channels=args.channels, widths=widths,
                          pooling=tuple(args.pooling.split(",")), out_dim=args.out_dim or None,
                          dropout=args.dropout, embed_dropout=args.embed_dropout, word_dropout=args.word_dropout,
                          embed_std=args.embed_std, rng=rng)
    if args.head == "distribution":
        head = DistributionHead(tower.out_dim, hidden=args.hidden, dropout=args.head_dropout, rng=rng)
    else:
        head = ExpL1Head(scale=args.scale)
    return TextTwin(tower, head)


def ppmi_svd_vectors(sentences_ids, vocab_size, dim, window):
    """Word vectors from the training sentences alone: the truncated SVD of the positive pointwise mutual
    information of co-occurrence within ``window`` words (Levy & Goldberg 2014), rows U_k sqrt(S_k)."""
    counts = np.zeros((vocab_size, vocab_size))
    for ids in sentences_ids:
        for offset in range(1, window + 1):
            a, b = np.array(ids[:-offset]), np.array(ids[offset:])
            np.add.at(counts, (a, b), 1.0)
            np.add.at(counts, (b, a), 1.0)
    total = counts.sum()
    row = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * total / (row * row.T))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, singular, _ = np.linalg.svd(ppmi)
    return u[:, :dim] * np.sqrt(singular[:dim])


def encode(vocab, pairs):
    return [vocab.encode(s) for s in pairs.sentences_a], [vocab.encode(s) for s in pairs.sentences_b]


def predict(model, head, a, b, batch=500):
    """The predicted scores of every pair, in eval mode."""
    model.eval()
    scores = []
    with ts.no_grad():
        for start in range(0, len(a), batch):
            ids_a, len_a = pad_batch(a[start:start + batch])
            ids_b, len_b = pad_batch(b[start:start + batch])
            out = model(ids_a, len_a, ids_b, len_b)
            scores.append(expected_score(out) if head == "distribution" else out.numpy().astype(np.float64))
    model.train()
    return np.concatenate(scores)


def git_commit():
    """The checkout's commit, with "+changes" when it has uncommitted changes to tracked files."""
    try:
        repo = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+changes" if dirty else "")
    except OSError:
        return None


def train_member(args, seed, vocab, train, trial, start_vectors=None):
    """One model trained on ``train`` (encoded pairs and scores), its weights kept at the best trial epoch.
    Returns (model, history, best)."""
    (train_a, train_b, train_scores), (trial_a, trial_b, trial_scores) = train, trial
    rng = np.random.default_rng(seed)
    nn.init.seed(seed)
    model = build_model(args, len(vocab), rng)
    embed = model.tower.embedding.weight
    if start_vectors is not None:
        embed.data = start_vectors.astype(embed.dtype)
    others = [p for p in model.parameters() if p is not embed]
    embed_wd = args.weight_decay if args.embed_weight_decay is None else args.embed_weight_decay
    embed_lr = args.lr if args.embed_lr is None else args.embed_lr
    if embed_lr == 0:  # fixed random embeddings: no gradient is computed for them
        embed.requires_grad = False
        groups = [{"params": others, "weight_decay": args.weight_decay}]
    else:
        groups = [{"params": [embed], "weight_decay": embed_wd, "lr": embed_lr},
                  {"params": others, "weight_decay": args.weight_decay}]
    opt = optim.Adam(groups, lr=args.lr)
    params = list(model.parameters())
    shadow = [p.data.copy() for p in params] if args.ema else None
    targets = score_distribution(train_scores).astype(np.float32)
    gold = train_scores.astype(np.float32)

    history, best, best_state = [], {"pearson": -np.inf}, None
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        order = rng.permutation(len(train_scores))
        losses = []
        for s in range(0, len(order), args.batch):
            idx = order[s:s + args.batch]
            a, b = [train_a[i] for i in idx], [train_b[i] for i in idx]
            if args.swap:
                flip = rng.random(len(idx)) < 0.5
                a, b = [y if f else x for x, y, f in zip(a, b, flip)], [x if f else y for x, y, f in zip(a, b, flip)]
            out = model(*pad_batch(a), *pad_batch(b))
            loss = kl_divergence_loss(out, targets[idx]) if args.head == "distribution" else mse_loss(out, gold[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if shadow is not None:
                for p, avg in zip(params, shadow):
                    avg *= args.ema
                    avg += (1 - args.ema) * p.data
            losses.append(float(loss))
        for group in opt.param_groups:
            group["lr"] *= args.lr_decay
        if shadow is not None:  # score (and keep) the averaged weights; train on from the current ones
            current = [p.data for p in params]
            for p, avg in zip(params, shadow):
                p.data = avg.copy()
        trial_metrics = relatedness_metrics(predict(model, args.head, trial_a, trial_b), trial_scores)
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "seconds": seconds, **trial_metrics})
        better = trial_metrics["pearson"] > best["pearson"]
        if better:
            best, best_state = {"epoch": epoch, **trial_metrics}, model.state_dict()
        if shadow is not None:
            for p, data in zip(params, current):
                p.data = data
        print(f"seed {seed} epoch {epoch:3d}  loss {np.mean(losses):.4f}  trial r {trial_metrics['pearson']:.4f}  "
              f"rho {trial_metrics['spearman']:.4f}  mse {trial_metrics['mse']:.4f}  {seconds:.1f}s"
              + ("  *" if better else ""), flush=True)
        if args.patience and epoch - best["epoch"] >= args.patience:
            break
    model.load_state_dict(best_state)
    return model, history, best


def main(argv=None):
    args = parse_args(argv)
    reuse_freed_memory()
    data = load_sick(args.data)
    vocab = Vocabulary.build(data["train"].sentences(), min_count=args.min_count)
    train = (*encode(vocab, data["train"]), data["train"].scores)
    trial = (*encode(vocab, data["trial"]), data["trial"].scores)
    start = time.perf_counter()
    start_vectors = None
    if args.svd_init:  # computed once from the training sentences, shared by the members
        start_vectors = ppmi_svd_vectors(train[0] + train[1], len(vocab), args.embed_dim, args.svd_init)
        start_vectors *= args.embed_std / start_vectors[2:].std()  # the scale of the random start
        start_vectors[vocab.PAD] = 0
    members = []
    for m in range(args.members):
        seed = args.seed if args.members == 1 else args.seed * 100 + m
        model, history, best = train_member(args, seed, vocab, train, trial, start_vectors)
        members.append({"seed": seed, "model": model, "history": history, "best_trial": best})
    train_seconds = time.perf_counter() - start
    trial_scores = np.mean([predict(m["model"], args.head, trial[0], trial[1]) for m in members], axis=0)
    best = relatedness_metrics(trial_scores, trial[2])
    if args.members == 1:
        best = members[0]["best_trial"]
    model = members[0]["model"]
    n_params = sum(p.size for p in model.parameters())
    print(f"vocabulary {len(vocab)} ids; {n_params} parameters per model; {model}", flush=True)
    record = {"settings": vars(args), "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": f"{platform.node()} ({os.cpu_count()} CPUs)", "vocabulary": len(vocab),
              "parameters": int(n_params),
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
              "history": members[0]["history"] if args.members == 1 else None,
              "members": [{k: m[k] for k in ("seed", "history", "best_trial")} for m in members],
              "best_trial": best, "train_seconds": train_seconds}
    print(f"best trial{' (the members averaged)' if args.members > 1 else ''}: r {best['pearson']:.4f}  "
          f"rho {best['spearman']:.4f}  mse {best['mse']:.4f}; training {train_seconds / 60:.2f} min", flush=True)
    if args.test:
        test_a, test_b = encode(vocab, data["test"])
        member_scores = [predict(m["model"], args.head, test_a, test_b) for m in members]
        record["test"] = relatedness_metrics(np.mean(member_scores, axis=0), data["test"].scores)
        if args.members > 1:  # each member alone, for comparison (chosen by nothing)
            for m, scores in zip(record["members"], member_scores):
                m["test"] = relatedness_metrics(scores, data["test"].scores)
        print(f"test: r {record['test']['pearson']:.4f}  rho {record['test']['spearman']:.4f}  "
              f"mse {record['test']['mse']:.4f}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(portable(record), indent=1))  # paths relative to the checkout
    return record


if __name__ == "__main__":
    main()
