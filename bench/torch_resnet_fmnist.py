"""PyTorch twin of `pacer train resnet50` on an ImageFolder tree (e.g. `pacer prepare
fashion-mnist`): torchvision resnet50, random-resized crop + flip, SGD with momentum or a
plain LARS, label smoothing, linear warmup then poly-2 decay per step, eval each epoch.
Used to tell a recipe problem from a Pacer problem: run both with the same flags.

  python3 bench/torch_resnet_fmnist.py --data /tmp/fmnist --image-size 32 --batch 64 \
      --epochs 1 --lr 0.05 --crop-min-scale 0.35 --warmup-epochs 1
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T


def lars_step(opt, decay, no_decay, lr, wd, eta=0.001, momentum=0.9):
    """LARS as `pacer` implements it: trust ratio eta*|w|/(|g| + wd*|w|) on the decayed
    tensors, plain momentum SGD on batch-norm parameters and biases."""
    with torch.no_grad():
        for q in decay + no_decay:
            if q.grad is None:
                continue
            d = q.grad
            if any(q is r for r in decay):
                wn, gn = q.norm(), d.norm()
                trust = eta * wn / (gn + wd * wn) if wn > 0 and gn > 0 else 1.0
                d = (d + wd * q) * trust
            st = opt.state.setdefault(q, {})
            buf = st.get("lars_momentum")
            st["lars_momentum"] = buf = d.clone() if buf is None else buf.mul_(momentum).add_(d)
            q.add_(buf, alpha=-lr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--crop-min-scale", type=float, default=0.35)
    p.add_argument("--warmup-epochs", type=float, default=1)
    p.add_argument("--optimizer", choices=["sgd", "lars"], default="sgd")
    p.add_argument("--zero-init-residual", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_tf = T.Compose([T.RandomResizedCrop(a.image_size, scale=(a.crop_min_scale, 1.0)),
                          T.RandomHorizontalFlip(), T.ToTensor(), norm])
    eval_tf = T.Compose([T.Resize(a.image_size * 256 // 224), T.CenterCrop(a.image_size), T.ToTensor(), norm])
    train = torchvision.datasets.ImageFolder(a.data + "/train", train_tf)
    val = torchvision.datasets.ImageFolder(a.data + "/val", eval_tf)
    tl = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=1)
    vl = torch.utils.data.DataLoader(val, batch_size=256, num_workers=1)
    model = torchvision.models.resnet50(num_classes=len(train.classes), zero_init_residual=a.zero_init_residual)
    decay = [q for q in model.parameters() if q.ndim > 1]
    no_decay = [q for q in model.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.weight_decay},
                           {"params": no_decay, "weight_decay": 0}], lr=a.lr, momentum=0.9)
    steps = len(tl) * a.epochs
    warm = int(a.warmup_epochs * len(tl))
    step, start = 0, time.time()
    for epoch in range(a.epochs):
        model.train()
        for x, y in tl:
            lr = a.lr * (step + 1) / warm if step < warm else a.lr * (1 - (step - warm) / max(steps - warm, 1)) ** 2
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(x), y, label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            if a.optimizer == "lars":
                lars_step(opt, decay, no_decay, lr, a.weight_decay)
            else:
                opt.step()
            step += 1
            if step % 50 == 0:
                print(f"step {step} loss {loss.item():.4f} lr {lr:.4g}", flush=True)
        model.eval()
        hit = n = 0
        with torch.no_grad():
            for x, y in vl:
                hit += (model(x).argmax(1) == y).sum().item()
                n += len(y)
        print(f"epoch {epoch + 1}: val top-1 {hit / n:.4f}", flush=True)
    print(json.dumps({"workload": "torch-resnet50", "eval_accuracy": hit / n, "epochs": a.epochs,
                      "wall_s": time.time() - start}))


if __name__ == "__main__":
    main()
