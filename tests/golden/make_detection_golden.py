#!/usr/bin/python3
"""Writes tests/golden/detection.safetensors: torchvision's detection ops on fixed random
inputs, the reference of tests/nn/test_detection_golden.cpp.

Run with Debian's interpreter and packages (python3-torch, python3-torchvision):
    /usr/bin/python3 tests/golden/make_detection_golden.py
The safetensors file is written by hand (8-byte little-endian header length, JSON header,
raw little-endian data), so the `safetensors` package is not needed.
"""
import math
import os

import torch

from safetensors_writer import write_safetensors
import torchvision
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import boxes as box_ops

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "detection.safetensors")



def save(path, tensors, metadata):
    write_safetensors(path, [(n, tensors[n]) for n in sorted(tensors)], metadata)


def random_boxes(g, n, lo, hi, wlo, whi, dtype):
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * (hi - lo) + lo
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * (whi - wlo) + wlo
    return torch.cat([xy, xy + wh], 1).to(dtype)


def main():
    g = torch.Generator().manual_seed(20260601)
    t = {}

    # roi_align: forward and input gradient, aligned x sampling_ratio.
    x = torch.randn(2, 3, 11, 13, generator=g, dtype=torch.float64)
    b = random_boxes(g, 16, -3.0, 22.0, 0.5, 12.0, torch.float64)  # input coordinates, before spatial_scale 0.5
    batch = torch.randint(0, 2, (16, 1), generator=g).to(torch.float64)
    rois = torch.cat([batch, b], 1)
    t["roi_align.input"] = x
    t["roi_align.rois"] = rois
    grad_out = torch.randn(16, 3, 4, 3, generator=g, dtype=torch.float64)
    t["roi_align.grad_output"] = grad_out
    for aligned in (True, False):
        for sr in (2, -1):
            xi = x.clone().requires_grad_(True)
            y = torchvision.ops.roi_align(xi, rois, output_size=(4, 3), spatial_scale=0.5, sampling_ratio=sr,
                                          aligned=aligned)
            (gx,) = torch.autograd.grad(y, xi, grad_out)
            key = f"roi_align.aligned{int(aligned)}_sr{sr}"
            t[key + ".output"] = y.detach()
            t[key + ".grad_input"] = gx

    # nms and batched_nms (f32; distinct scores).
    boxes = random_boxes(g, 300, 0.0, 60.0, 4.0, 30.0, torch.float32)
    scores = torch.randperm(300, generator=g).to(torch.float32) / 300.0 + 0.001
    classes = torch.randint(0, 5, (300,), generator=g)
    t["nms.boxes"], t["nms.scores"], t["nms.classes"] = boxes, scores, classes
    for thr in (0.3, 0.5, 0.7):
        t[f"nms.keep_{thr}"] = torchvision.ops.nms(boxes, scores, thr)
        keep = torchvision.ops.batched_nms(boxes, scores, classes, thr)
        vanilla = box_ops._batched_nms_vanilla(boxes, scores, classes, thr)
        assert torch.equal(keep, vanilla), "coordinate trick and per-class nms disagree"
        t[f"batched_nms.keep_{thr}"] = keep

    # box_iou, clip_boxes_to_image.
    a = random_boxes(g, 9, -5.0, 20.0, 0.5, 10.0, torch.float64)
    c = random_boxes(g, 7, -5.0, 20.0, 0.5, 10.0, torch.float64)
    t["box_iou.a"], t["box_iou.b"] = a, c
    t["box_iou.iou"] = torchvision.ops.box_iou(a, c)
    t["clip.boxes"] = a
    t["clip.clipped"] = torchvision.ops.clip_boxes_to_image(a, (12, 15))  # (height, width)

    # BoxCoder (10, 10, 5, 5), bbox_xform_clip = log(1000 / 16).
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    assert abs(coder.bbox_xform_clip - math.log(1000.0 / 16)) < 1e-15
    gt = random_boxes(g, 12, 0.0, 50.0, 2.0, 20.0, torch.float64)
    prop = random_boxes(g, 12, 0.0, 50.0, 2.0, 20.0, torch.float64)
    t["box_coder.reference"], t["box_coder.proposals"] = gt, prop
    t["box_coder.encoded"] = coder.encode_single(gt, prop)
    codes = torch.randn(12, 8, generator=g, dtype=torch.float64) * 2
    codes[3, 2] = 30.0  # dw / 5 = 6 > clip
    codes[5, 7] = 25.0
    t["box_coder.rel_codes"] = codes
    t["box_coder.decoded"] = coder.decode_single(codes, prop)

    # Anchors of one level: sizes (32, 45, 64), ratios (0.5, 1, 2), 5 x 4 grid, stride (16, 8).
    ag = AnchorGenerator(sizes=((32, 45, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    ag.set_cell_anchors(torch.float32, torch.device("cpu"))
    t["anchors.level"] = ag.grid_anchors([[5, 4]], [[torch.tensor(16), torch.tensor(8)]])[0]

    # SSD coding (MLPerf v0.6 SSD reference, box_utils.Encoder: scale_xy = 1 / 0.1, scale_wh = 1 / 0.2).
    bx = random_boxes(g, 10, 0.0, 1.0, 0.05, 0.5, torch.float64)
    dxy = torch.rand(10, 2, generator=g, dtype=torch.float64)
    dwh = torch.rand(10, 2, generator=g, dtype=torch.float64) * 0.4 + 0.05
    dboxes = torch.cat([dxy, dwh], 1)
    cxcy, wh = (bx[:, :2] + bx[:, 2:]) / 2, bx[:, 2:] - bx[:, :2]
    t["ssd.boxes"], t["ssd.dboxes"] = bx, dboxes
    t["ssd.encoded"] = torch.cat([(1 / 0.1) * (cxcy - dxy) / dwh, (1 / 0.2) * torch.log(wh / dwh)], 1)
    loc = torch.randn(10, 4, generator=g, dtype=torch.float64)
    t["ssd.loc"] = loc
    pxy = loc[:, :2] * 0.1 * dwh + dxy
    pwh = torch.exp(loc[:, 2:] * 0.2) * dwh
    t["ssd.decoded"] = torch.cat([pxy - 0.5 * pwh, pxy + 0.5 * pwh], 1)

    save(OUT, t, {"torch": torch.__version__, "torchvision": torchvision.__version__,
                  "generator": "make_detection_golden.py"})
    print(f"wrote {OUT}: {len(t)} tensors (torch {torch.__version__}, torchvision {torchvision.__version__})")


if __name__ == "__main__":
    main()
