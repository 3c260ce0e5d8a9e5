#!/usr/bin/python3
"""PyTorch baseline for `pacer bench <case>`: same cases, flags, timing and JSON fields.

Run with Debian's interpreter (/usr/bin/python3, which has python3-torch), e.g.
    /usr/bin/python3 bench/torch_bench.py gemm --m 2048 --n 2048 --k 2048 --json --threads 2

Each case prints one JSON line with case, device, dtype, median_ms, throughput and unit as
Pacer does (tools/cmd_bench.cpp), plus "impl": "pytorch" and the torch version.
Timing matches Pacer: median of --repeat timed runs after --warmup untimed runs.

gemm, add, conv2d and lstm take --device cuda (any python3 with a CUDA torch), e.g.
    python3 bench/torch_bench.py gemm --device cuda --dtype bf16 --m 8192 --n 8192 --k 8192 --json
On CUDA each timed run is bracketed by CUDA events after a synchronize, as in Pacer; conv2d
turns cudnn.benchmark on (the warm-up runs absorb its search) and starts the backward from a
dense gradient in the output's layout, as Pacer does on CUDA.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {
    "f32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "f64": torch.float64, "float64": torch.float64, "double": torch.float64,
    "f16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def median_ms(warmup, runs, fn, device="cpu"):
    """Median wall time (ms) of `runs` calls after `warmup` untimed calls (as Pacer's median_ms).
    On CUDA: synchronize, then CUDA events around each run, read once the end event is done."""
    for _ in range(warmup):
        fn()
    t = []
    if device == "cuda":
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(runs):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            t.append(start.elapsed_time(stop))
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2]  # same index as Pacer (upper median for even counts)


def device_fields(a):
    """The "device" field (and the GPU's name on CUDA), as Pacer's add_device."""
    if a.device == "cuda":
        return {"device": "cuda", "gpu": torch.cuda.get_device_name()}
    return {"device": "cpu"}


def emit(args, fields, human):
    fields = {**fields, "impl": "pytorch", "torch": torch.__version__}
    if not args.json:
        print(human)
    print(json.dumps(fields))


def dtype_name(dt):
    return str(dt).replace("torch.", "")


def bench_gemm(a):
    dt = DTYPES[a.dtype]
    A, B = torch.randn(a.m, a.k, device=a.device).to(dt), torch.randn(a.k, a.n, device=a.device).to(dt)
    ms = median_ms(a.warmup, a.repeat, lambda: torch.mm(A, B), a.device)
    gflops = 2.0 * a.m * a.n * a.k / (ms * 1e6)
    emit(a, {"case": "gemm", **device_fields(a), "dtype": dtype_name(dt), "m": a.m, "n": a.n, "k": a.k,
             "threads": torch.get_num_threads(), "median_ms": ms, "throughput": gflops, "unit": "GFLOP/s"},
         f"gemm {a.m}x{a.n}x{a.k} {dtype_name(dt)}: {ms:.3f} ms, {gflops:.1f} GFLOP/s")


def bench_add(a):
    dt = DTYPES[a.dtype]
    x, y = torch.rand(a.numel, device=a.device).to(dt), torch.rand(a.numel, device=a.device).to(dt)
    # torch.add allocates its output each call, like Pacer's add(x, y).
    ms = median_ms(a.warmup, a.repeat, lambda: torch.add(x, y), a.device)
    esize = x.element_size()
    gbps = 3.0 * a.numel * esize / (ms * 1e6)
    # Copy bandwidth with the same threads (on CUDA: device to device): read + write bytes
    # of a same-sized buffer.
    src, dst = torch.ones(a.numel, dtype=dt, device=a.device), torch.zeros(a.numel, dtype=dt, device=a.device)
    copy_ms = median_ms(a.warmup, a.repeat, lambda: dst.copy_(src), a.device)
    copy = 2.0 * a.numel * esize / (copy_ms * 1e6)
    emit(a, {"case": "add", **device_fields(a), "dtype": dtype_name(dt), "numel": a.numel,
             "threads": torch.get_num_threads(), "median_ms": ms, "throughput": gbps, "unit": "GB/s",
             "memcpy_gbps": copy, "fraction_of_memcpy": gbps / copy},
         f"add {a.numel} x {dtype_name(dt)}: {ms:.3f} ms, {gbps:.2f} GB/s "
         f"({100 * gbps / copy:.0f}% of memcpy {copy:.2f} GB/s)")


def bench_dispatch(a):
    # Autograd must record: x requires grad, so every add builds a graph node.
    x, y = torch.ones(1, requires_grad=True), torch.ones(1)
    add, calls = torch.add, a.calls

    def loop():
        for _ in range(calls):
            add(x, y)

    ms = median_ms(a.warmup, a.repeat, loop)
    us = ms * 1e3 / calls
    emit(a, {"case": "dispatch", "device": "cpu", "dtype": "float32", "autograd": True,
             "threads": torch.get_num_threads(), "median_ms": ms / calls, "median_us": us,
             "throughput": 1e6 / us, "unit": "calls/s"},
         f"dispatch: {us:.3f} us per recorded 1-element add (includes the Python loop)")


def bench_train_step(a):
    """One training step of the Fashion-MNIST MLP / CNN (the architectures of models/mlp.cpp and
    models/cnn.cpp) on a fixed random batch, at a precision: 32, or bf16-mixed through
    torch.autocast("cpu", torch.bfloat16) (CPU autocast has no f16 in this torch)."""
    if a.precision not in ("32", "bf16-mixed"):
        raise SystemExit(f"torch_bench.py: error: --precision {a.precision}: the CPU baseline has 32 and bf16-mixed")
    torch.manual_seed(0)
    if a.model == "cnn":
        model = torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 28, 28)),
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10))
    else:
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(a.batch, 784), torch.randint(0, 10, (a.batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16-mixed"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    ms = median_ms(a.warmup, a.repeat, step)
    emit(a, {"case": "train-step", "device": "cpu", "model": a.model, "precision": a.precision, "batch": a.batch,
             "threads": torch.get_num_threads(), "median_ms": ms, "throughput": a.batch / (ms / 1e3),
             "unit": "samples/s"},
         f"train-step {a.model} {a.precision} batch {a.batch}: {ms:.2f} ms per step")


def bench_resnet_step(a):
    """One torchvision ResNet training step on synthetic data (Pacer's resnet50-step). torch
    has no LARS: SGD with momentum stands in (the optimizer is a small part of the step)."""
    import torchvision
    cuda = a.device == "cuda"
    allowed = ("32", "16-mixed", "bf16-mixed") if cuda else ("32", "bf16-mixed")
    if a.precision not in allowed:
        raise SystemExit(f"torch_bench.py: error: --precision {a.precision}: this baseline has {', '.join(allowed)}")
    torch.manual_seed(0)
    if cuda:  # as in conv2d: cuDNN picks its algorithms by timing them (the warm-up absorbs it),
        torch.backends.cudnn.benchmark = True  # like Pacer's conv, which measures its own
        # Pacer's PACER_ALLOW_TF32=0 (the "32, TF32 off" rows) for PyTorch's side too.
        tf32 = os.environ.get("PACER_ALLOW_TF32", "1") != "0"
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34,
             50: torchvision.models.resnet50}[a.depth](num_classes=1000).to(a.device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size).to(a.device, memory_format=fmt)
    y = torch.randint(0, 1000, (a.batch,)).to(a.device)
    half = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(a.precision)
    scaling = cuda and a.precision == "16-mixed"
    # torch.amp.GradScaler where this torch has it (torch.cuda.amp's is deprecated there;
    # Debian's older torch has only that one).
    scaler = (torch.amp.GradScaler("cuda", enabled=scaling) if hasattr(torch.amp, "GradScaler")
              else torch.cuda.amp.GradScaler(enabled=scaling))

    def step():
        with torch.autocast(a.device, dtype=half or torch.bfloat16, enabled=half is not None):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    ms = median_ms(a.warmup, a.repeat, step, a.device)
    emit(a, {"case": "resnet50-step", **device_fields(a), "precision": a.precision, "channels_last": a.channels_last, "depth": a.depth, "batch": a.batch,
             "image_size": a.image_size, "threads": torch.get_num_threads(), "median_ms": ms,
             "throughput": a.batch / (ms / 1e3), "unit": "img/s", **({"cudnn_benchmark": True} if cuda else {})},
         f"resnet{a.depth}-step batch {a.batch} size {a.image_size} {a.precision}: {ms:.1f} ms")


def bench_imagefolder_pipeline(a):
    """torchvision's ImageFolder + RandomResizedCrop + flip + ToTensor + Normalize through a
    DataLoader with --loader-threads worker processes (0 = all cores), as Pacer's loader."""
    import torchvision
    import torchvision.transforms as T
    tf = T.Compose([T.RandomResizedCrop(a.size, scale=(0.05, 1.0)), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = torchvision.datasets.ImageFolder(a.data, transform=tf)
    workers = a.loader_threads if a.loader_threads > 0 else (os.cpu_count() or 1)
    n = min(a.images, len(ds))
    sub = torch.utils.data.Subset(ds, list(range(n)))

    def run():
        loader = torch.utils.data.DataLoader(sub, batch_size=a.batch, shuffle=True, num_workers=workers)
        for _ in loader:
            pass

    ms = median_ms(a.warmup, a.repeat, run)
    emit(a, {"case": "imagefolder-pipeline", "device": "cpu", "size": a.size, "loader_threads": workers,
             "median_ms": ms, "throughput": n / (ms / 1e3), "unit": "img/s"},
         f"imagefolder-pipeline size {a.size}: {n / (ms / 1e3):.0f} img/s ({workers} worker processes)")


def read_idx(path):
    """IDX file (gzip): big-endian magic (dtype code, ndim), then ndim u32 sizes, then data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_train(data_dir):
    images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    x = ((x - 0.2860) / 0.3530).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


def time_mlp_epoch(images, labels, batch, lr, seed):
    """One epoch's wall time (s); model/optimizer creation is outside the timed region, the
    shuffle is inside it, as in Pacer's models::time_mlp_epoch."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for ix in torch.randperm(len(labels), generator=g).split(batch):  # last batch partial
        x, y = images.index_select(0, ix), labels.index_select(0, ix)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # Pacer reads the loss every step too
    return time.perf_counter() - t0


def bench_mlp_epoch(a):
    images, labels = load_train(a.data)
    t = []
    for i in range(a.warmup + a.repeat):
        s = time_mlp_epoch(images, labels, a.batch, a.lr, i)
        if i >= a.warmup:
            t.append(s * 1e3)
    t.sort()
    ms = t[len(t) // 2]
    emit(a, {"case": "mlp-epoch", "device": "cpu", "dtype": "float32", "batch": a.batch,
             "threads": torch.get_num_threads(), "median_ms": ms,
             "throughput": len(labels) / (ms / 1e3), "unit": "samples/s"},
         f"mlp-epoch batch {a.batch}: {ms:.0f} ms per epoch")


def bench_conv2d(a):
    # Same shapes, init scale and FLOP count as `pacer bench conv2d` (backward = 3x forward).
    dt = DTYPES[a.dtype]
    cuda = a.device == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    x = torch.randn(a.n, a.c, a.h, a.w, device=a.device).to(dt)
    if a.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.randn(a.k, a.c // a.groups, a.kernel, a.kernel, device=a.device) * 0.05).to(dt)
    x.requires_grad_(a.backward)
    w.requires_grad_(a.backward)
    oh = (a.h + 2 * a.padding - a.dilation * (a.kernel - 1) - 1) // a.stride + 1
    ow = (a.w + 2 * a.padding - a.dilation * (a.kernel - 1) - 1) // a.stride + 1
    dy = None
    if cuda and a.backward:  # a dense gradient in the output's layout (Pacer does the same on CUDA)
        dy = torch.ones(a.n, a.k, oh, ow, dtype=dt, device=a.device)
        if a.channels_last:
            dy = dy.contiguous(memory_format=torch.channels_last)

    def step():
        y = torch.nn.functional.conv2d(x, w, None, a.stride, a.padding, a.dilation, a.groups)
        if a.backward:
            if dy is not None:
                y.backward(dy)
            else:
                y.sum().backward()

    if a.backward:
        ms = median_ms(a.warmup, a.repeat, step, a.device)
    else:
        with torch.no_grad():
            ms = median_ms(a.warmup, a.repeat, step, a.device)
    flops = 2.0 * a.n * a.k * oh * ow * (a.c // a.groups) * a.kernel * a.kernel
    flops *= 3.0 if a.backward else 1.0
    emit(a, {"case": "conv2d", **device_fields(a), "dtype": dtype_name(dt), "n": a.n, "c": a.c, "h": a.h, "w": a.w,
             "k": a.k, "kernel": a.kernel, "stride": a.stride, "padding": a.padding, "groups": a.groups,
             "channels_last": a.channels_last, "backward": a.backward, "threads": torch.get_num_threads(),
             "median_ms": ms, "throughput": flops / (ms * 1e6), "unit": "GFLOP/s",
             **({"cudnn_benchmark": True} if cuda else {})},
         f"conv2d: {ms:.3f} ms, {flops / (ms * 1e6):.1f} GFLOP/s")


def bench_lstm(a):
    # torch.nn.LSTM with the same sizes and FLOP count as `pacer bench lstm`.
    dt = DTYPES[a.dtype]
    inp = a.input if a.input > 0 else a.hidden
    lstm = torch.nn.LSTM(inp, a.hidden, a.layers, bidirectional=a.bidirectional).to(device=a.device, dtype=dt)
    x = torch.randn(a.steps, a.batch, inp, device=a.device).to(dt).requires_grad_(a.backward)

    def step():
        if a.backward:
            lstm(x)[0].sum().backward()
        else:
            with torch.no_grad():
                lstm(x)

    ms = median_ms(a.warmup, a.repeat, step, a.device)
    d = 2 if a.bidirectional else 1
    flops = sum(2.0 * d * a.steps * a.batch * 4 * a.hidden * ((inp if l == 0 else d * a.hidden) + a.hidden)
                for l in range(a.layers))
    flops *= 3.0 if a.backward else 1.0
    emit(a, {"case": "lstm", **device_fields(a), "dtype": dtype_name(dt), "hidden": a.hidden, "input": inp,
             "batch": a.batch, "steps": a.steps, "layers": a.layers, "bidirectional": a.bidirectional,
             "backward": a.backward, "threads": torch.get_num_threads(), "median_ms": ms,
             "throughput": flops / (ms * 1e6), "unit": "GFLOP/s"},
         f"lstm: {ms:.3f} ms, {flops / (ms * 1e6):.1f} GFLOP/s")


def bench_batchnorm(a):
    # Training-mode batch norm; bytes counted as in `pacer bench batchnorm` (3 passes forward,
    # 8 with backward), compared with a copy of the same size.
    dt = DTYPES[a.dtype]
    x = torch.randn(a.n, a.c, a.h, a.w).to(dt).requires_grad_(a.backward)
    w = torch.ones(a.c, requires_grad=a.backward)
    b = torch.zeros(a.c, requires_grad=a.backward)
    rm, rv = torch.zeros(a.c), torch.ones(a.c)
    dy = torch.randn(a.n, a.c, a.h, a.w).to(dt)  # a dense incoming gradient, as in a network

    def step():
        y = torch.nn.functional.batch_norm(x, rm, rv, w.to(dt), b.to(dt), training=True)
        if a.backward:
            y.backward(dy)

    ms = median_ms(a.warmup, a.repeat, step)
    size = a.n * a.c * a.h * a.w * torch.tensor([], dtype=dt).element_size()
    gbps = size * (8.0 if a.backward else 3.0) / (ms * 1e6)
    src, dst = torch.empty(size, dtype=torch.uint8), torch.empty(size, dtype=torch.uint8)
    copy_ms = median_ms(a.warmup, a.repeat, lambda: dst.copy_(src))
    copy = 2.0 * size / (copy_ms * 1e6)
    emit(a, {"case": "batchnorm", "device": "cpu", "dtype": dtype_name(dt), "n": a.n, "c": a.c, "h": a.h, "w": a.w,
             "backward": a.backward, "threads": torch.get_num_threads(), "median_ms": ms, "throughput": gbps,
             "unit": "GB/s", "memcpy_gbps": copy, "fraction_of_memcpy": gbps / copy}, f"batchnorm: {ms:.3f} ms")


def main():
    p = argparse.ArgumentParser(description="PyTorch baseline for `pacer bench`.")
    sub = p.add_subparsers(dest="case", required=True)

    def case(name, fn, help):
        c = sub.add_parser(name, help=help)
        c.add_argument("--repeat", type=int, default=10, help="timed runs (the median is reported)")
        c.add_argument("--warmup", type=int, default=2, help="untimed runs first")
        c.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
        c.add_argument("--json", action="store_true", help="print JSON lines only")
        c.set_defaults(fn=fn, device="cpu")
        return c

    def device_arg(c):
        c.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu, or cuda (needs a CUDA torch)")

    c = case("gemm", bench_gemm, "matrix multiply GFLOP/s")
    c.add_argument("--m", type=int, default=2048)
    c.add_argument("--n", type=int, default=2048)
    c.add_argument("--k", type=int, default=2048)
    c.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    device_arg(c)
    c = case("add", bench_add, "elementwise add bandwidth vs memcpy")
    c.add_argument("--numel", type=int, default=16777216)
    c.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    device_arg(c)
    c = case("dispatch", bench_dispatch, "per-op overhead with autograd")
    c.add_argument("--calls", type=int, default=20000)
    c = case("mlp-epoch", bench_mlp_epoch, "Fashion-MNIST MLP epoch time")
    c.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    c.add_argument("--batch", type=int, default=64)
    c.add_argument("--lr", type=float, default=0.05)
    c = case("conv2d", bench_conv2d, "2-d convolution GFLOP/s")
    for name, default in (("n", 8), ("c", 64), ("h", 56), ("w", 56), ("k", 64), ("kernel", 3), ("stride", 1),
                          ("padding", 1), ("groups", 1), ("dilation", 1)):
        c.add_argument("--" + name, type=int, default=default)
    c.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    c.add_argument("--channels-last", action="store_true")
    c.add_argument("--backward", action="store_true")
    device_arg(c)
    c = case("lstm", bench_lstm, "LSTM layer GFLOP/s")
    for name, default in (("hidden", 1024), ("input", 0), ("batch", 64), ("steps", 50), ("layers", 1)):
        c.add_argument("--" + name, type=int, default=default)
    c.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    c.add_argument("--bidirectional", action="store_true")
    c.add_argument("--backward", action="store_true")
    device_arg(c)
    c = case("batchnorm", bench_batchnorm, "training batch norm bandwidth")
    for name, default in (("n", 8), ("c", 64), ("h", 112), ("w", 112)):
        c.add_argument("--" + name, type=int, default=default)
    c.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    c.add_argument("--backward", action="store_true")
    c = case("resnet50-step", bench_resnet_step, "one ResNet training step on synthetic data")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--image-size", type=int, default=224)
    c.add_argument("--precision", default="32")
    c.add_argument("--depth", type=int, default=50, choices=(18, 34, 50))
    c.add_argument("--channels-last", action="store_true")
    c.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu, or cuda (needs a CUDA torch)")
    c.add_argument("--mode", default="eager", choices=("eager", "graph"),
                   help="Pacer's eager or graph mode; PyTorch runs eagerly either way (the baseline of both)")
    c = case("imagefolder-pipeline", bench_imagefolder_pipeline, "JPEG training pipeline throughput")
    c.add_argument("--data", required=True)
    c.add_argument("--loader-threads", type=int, default=0)
    c.add_argument("--batch", type=int, default=64)
    c.add_argument("--images", type=int, default=2000)
    c.add_argument("--size", type=int, default=224)
    c = case("train-step", bench_train_step, "one training step of the MLP / CNN at a precision")
    c.add_argument("--model", default="cnn", choices=("mlp", "cnn"))
    c.add_argument("--batch", type=int, default=64)
    c.add_argument("--precision", default="32")
    a = p.parse_args()
    if a.repeat < 1 or a.warmup < 0:
        p.error("--repeat must be >= 1 and --warmup >= 0")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch_bench.py: error: --device cuda: this torch sees no CUDA device "
              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})", file=sys.stderr)
        return 1

    # This Debian build defaults to 1 thread, so always set it (0 = all cores, as Pacer).
    torch.set_num_threads(a.threads if a.threads > 0 else (os.cpu_count() or 1))
    if a.case in ("gemm", "add"):
        with torch.no_grad():
            a.fn(a)
    else:
        a.fn(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
