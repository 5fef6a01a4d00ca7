"""Train a small CNN with an IsoMax+, IsoMax or SoftMax head on Fashion-MNIST, then export it,
evaluate its OOD detection, and write its model folder, model card and manifest entry (without
an OOD block: run the `npm run calibrate` command it prints next).

    /usr/bin/python3 training/train.py --head isomaxplus --name fashion-mnist-isomaxplus --default

See training/README.md for the exact commands that made the shipped models.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import (DEFAULT_FASHION_DIR, FASHION_MEAN, FASHION_STD, DataError,  # noqa: E402
                  load_fashion, train_val_split)
from isomax import HEADS, loss_for  # noqa: E402
from net import Net  # noqa: E402
from outlier_exposure import synthetic_outliers, uniform_loss  # noqa: E402
from scores import SCORE_KINDS  # noqa: E402

VAL_SIZE = 5000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) → float (N, 1, 28, 28) normalised exactly as the service does."""
    x = torch.tensor(images, dtype=torch.float32).div_(255.0).unsqueeze(1)
    return (x - FASHION_MEAN) / FASHION_STD


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random horizontal flip and random translation by up to `pad` pixels (zero = background)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    background = -FASHION_MEAN / FASHION_STD
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=background)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen)
    grid = torch.arange(28).unsqueeze(0)
    rows, cols = (dy + grid).unsqueeze(2), (dx + grid).unsqueeze(1)
    # One gather instead of a Python loop: out[i, 0, r, c] = padded[i, 0, dy_i + r, dx_i + c].
    return padded[torch.arange(n).view(-1, 1, 1), 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def train(args: argparse.Namespace) -> tuple[Net, dict]:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    images, labels = load_fashion(args.data, "train")
    train_idx, val_idx = train_val_split(len(images), VAL_SIZE, args.seed)
    x_train, y_train = to_tensor(images[train_idx]), torch.from_numpy(labels[train_idx])
    x_val, y_val = to_tensor(images[val_idx]), torch.from_numpy(labels[val_idx])

    model = Net(args.head, width=args.width, feature_dim=args.feature_dim)
    if args.init_onnx:
        load_onnx_weights(model, args.init_onnx)
        log(f"fine-tuning {args.init_onnx}: val acc before {(predict_logits(model, x_val).argmax(1) == y_val).float().mean().item():.4f}")
    criterion = loss_for(args.head)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=args.weight_decay)
    steps_per_epoch = len(x_train) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        if args.init_onnx:
            freeze_batchnorm(model)
        perm = torch.randperm(len(x_train), generator=gen)
        total_loss, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            xb = augment(x_train[idx], gen) if args.augment else x_train[idx]
            yb = y_train[idx]
            if args.oe_weight > 0:
                # Outliers from other training-split images, never from the held-out validation
                # images; one forward pass, so a from-scratch run's BatchNorm statistics see both,
                # as in the OE paper (--init-onnx freezes them).
                src = x_train[torch.randint(0, len(x_train), (args.oe_batch,), generator=gen)]
                both = model(torch.cat([xb, synthetic_outliers(src, gen)]))
                logits = both[:len(yb)]
                loss = criterion(logits, yb) + args.oe_weight * uniform_loss(both[len(yb):])
            else:
                logits = model(xb)
                loss = criterion(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        val_acc = (predict_logits(model, x_val).argmax(1) == y_val).float().mean().item()
        elapsed = time.time() - start
        history.append({"epoch": epoch, "loss": total_loss / seen, "train_acc": correct / seen,
                        "val_acc": val_acc, "elapsed_s": elapsed})
        log(f"epoch {epoch:2d}/{args.epochs}  loss {total_loss / seen:.4f}  train acc {correct / seen:.4f}  "
            f"val acc {val_acc:.4f}  elapsed {elapsed:.0f}s")
    info = {"train_seconds": time.time() - start, "history": history,
            "n_train": len(train_idx), "n_val": len(val_idx), "val_indices": val_idx}
    return model, info


def load_onnx_weights(model: Net, path: str) -> None:
    """Load a model exported by export.py back into `model`, exactly: the export folds each conv
    block's BatchNorm into the conv (weight and bias), so the BatchNorm becomes the identity plus
    that bias (mean 0, variance 1 − ε, scale 1). Used with freeze_batchnorm: the statistics of
    the folded layers must not be re-estimated from batches."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(path)
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    blocks = [m for m in model.features if isinstance(m, torch.nn.Sequential)]
    if len(convs) != len(blocks):
        raise DataError(f"{path}: {len(convs)} Conv nodes, the network has {len(blocks)} conv blocks")
    with torch.no_grad():
        for node, block in zip(convs, blocks):
            conv, bn = block[0], block[1]
            conv.weight.copy_(init[node.input[1]])
            bn.weight.fill_(1.0)
            bn.bias.copy_(init[node.input[2]])
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        state = {k: v for k, v in init.items() if not k.startswith("onnx::")}
        missing = [k for k in state if k not in model.state_dict()]
        if missing:
            raise DataError(f"{path}: initializers {missing} do not belong to a {model.head.kind} network")
        model.load_state_dict(state, strict=False)


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Fine-tuning keeps every BatchNorm's statistics (eval mode); its affine parameters still learn."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


CHECKPOINT_KEYS = ("head", "width", "feature_dim", "seed", "epochs", "lr", "oe_weight", "oe_batch", "init_onnx")


def save_checkpoint(model: Net, info: dict, args: argparse.Namespace, command: str) -> None:
    """The weights, the run's record and an ONNX export, for choosing on validation data before
    anything is published or any test image is looked at."""
    from export import export_onnx

    out = Path(args.save_checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    record = {k: getattr(args, k) for k in CHECKPOINT_KEYS}
    torch.save({"state_dict": model.state_dict(), "info": info, "args": record, "command": command},
               out / "checkpoint.pt")
    export_onnx(model, out / "model.onnx")
    log(f"wrote {out / 'checkpoint.pt'} and {out / 'model.onnx'} (nothing published)")


def load_checkpoint(args: argparse.Namespace) -> tuple[Net, dict, str]:
    """The model and run record of --save-checkpoint; the architecture options must match."""
    saved = torch.load(Path(args.from_checkpoint) / "checkpoint.pt", weights_only=False)
    for k in ("head", "width", "feature_dim", "seed"):
        if saved["args"][k] != getattr(args, k):
            raise DataError(f"--{k.replace('_', '-')} {getattr(args, k)} differs from the checkpoint's {saved['args'][k]}")
    model = Net(args.head, width=args.width, feature_dim=args.feature_dim)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved["info"], saved["command"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--head", required=True, help="isomaxplus | isomax | softmax")
    p.add_argument("--name", help="model name (default fashion-mnist-<head>)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--data", default=DEFAULT_FASHION_DIR, help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "models"))
    p.add_argument("--fixtures-dir", default=str(Path(__file__).resolve().parent.parent / "test" / "fixtures" / "parity"))
    p.add_argument("--splits-dir", default=str(Path(__file__).resolve().parent / "splits"),
                   help="where the validation split's indices are written (calibrate reads them)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--feature-dim", type=int, default=128)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--oe-weight", type=float, default=0.0,
                   help="outlier exposure: weight of the uniform loss on synthetic outliers (0: off; 0.5 in the OE paper)")
    p.add_argument("--oe-batch", type=int, default=64, help="synthetic outliers per step with --oe-weight")
    p.add_argument("--init-onnx", metavar="MODEL.ONNX",
                   help="fine-tune: start from the weights of an exported model of the same head and size "
                   "(BatchNorm statistics frozen) instead of a random initialisation")
    p.add_argument("--save-checkpoint", metavar="DIR",
                   help="after training, write DIR/checkpoint.pt and DIR/model.onnx and stop: no test image is "
                   "loaded, nothing is published (choose on validation data first, then --from-checkpoint)")
    p.add_argument("--from-checkpoint", metavar="DIR", help="skip training: publish the model saved by --save-checkpoint")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--score", help="the decision score to suggest in the calibrate command "
                   "(default: the best candidate on validation OOD sets made from the held-out images)")
    p.add_argument("--default", action="store_true", help="make this the manifest's default model")
    p.add_argument("--no-write", action="store_true", help="train and evaluate only; write nothing")
    args = p.parse_args(argv)
    if args.oe_weight < 0 or args.oe_batch < 1:
        p.error("--oe-weight must be ≥ 0 and --oe-batch ≥ 1")
    if args.oe_weight > 0 and args.head != "isomaxplus":
        p.error("--oe-weight is implemented for the isomaxplus head only")
    if args.save_checkpoint and args.from_checkpoint:
        p.error("--save-checkpoint and --from-checkpoint exclude each other")
    if args.head not in HEADS:
        p.error(f"unknown head {args.head!r}: expected one of {', '.join(HEADS)}")
    if args.score is not None and args.score not in SCORE_KINDS:
        p.error(f"unknown score {args.score!r}: expected one of {', '.join(SCORE_KINDS)}")
    if args.score == "mds" and args.head == "softmax":
        # calibrate refuses it too: a linear head's max logit is not a distance.
        p.error("--score mds needs a distance head (isomaxplus or isomax), not softmax")
    args.name = args.name or f"fashion-mnist-{args.head}"
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = "/usr/bin/python3 training/train.py " + " ".join(argv)
    # Imported late: keeps `--help` and argument errors fast.
    from publish import PublishError, check_can_publish, publish
    try:
        if args.save_checkpoint:
            model, info = train(args)
            save_checkpoint(model, info, args, command)
            return 0
        if not args.no_write:
            check_can_publish(args.models_dir)  # before training, not after it
        if args.from_checkpoint:
            model, info, command = load_checkpoint(args)
        else:
            model, info = train(args)
        publish(model, args, info, command)
    except (DataError, PublishError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
