"""Custom losses against brute-force loops, and their gradients checked numerically (the course's grad check)."""

import itertools

import numpy as np
import pytest
import torch

from edgepipe.export.train.losses import YoloTargets, batch_triplet_loss, build_yolo_targets, triplet_loss, yolo_loss


def sq(a, b) -> float:
    return float(((a - b) ** 2).sum())


def test_triplet_loss_matches_formula():
    torch.manual_seed(0)
    a, p, n = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    expected = np.mean([max(sq(a[i], p[i]) - sq(a[i], n[i]) + 0.2, 0) for i in range(5)])
    assert triplet_loss(a, p, n, 0.2).item() == pytest.approx(expected, rel=1e-5)


def test_zero_encoder_is_not_a_solution():
    # Without the margin an all-zero encoder would satisfy the loss; with alpha it pays alpha per triplet.
    z = torch.zeros(3, 4)
    assert triplet_loss(z, z, z, 0.2).item() == pytest.approx(0.2)


def brute_force(emb, labels, alpha, mining):
    d = {(i, j): sq(emb[i], emb[j]) for i in range(len(labels)) for j in range(len(labels))}
    idx = range(len(labels))
    if mining == "hard":
        losses = []
        for a in idx:
            pos = [d[a, p] for p in idx if p != a and labels[p] == labels[a]]
            neg = [d[a, n] for n in idx if labels[n] != labels[a]]
            if pos and neg:
                losses.append(max(max(pos) - min(neg) + alpha, 0))
        return np.mean(losses)
    losses = []
    for a, p in itertools.permutations(idx, 2):
        if labels[a] != labels[p]:
            continue
        negs = [d[a, n] for n in idx if labels[n] != labels[a]]
        if mining == "all":
            losses += [max(d[a, p] - dn + alpha, 0) for dn in negs]
        else:
            semi = [dn for dn in negs if dn > d[a, p]]
            losses.append(max(d[a, p] - (min(semi) if semi else min(negs)) + alpha, 0))
    return np.mean(losses)


@pytest.mark.parametrize("mining", ["all", "hard", "semi-hard"])
@pytest.mark.parametrize("seed", range(5))
def test_batch_mining_matches_brute_force(mining, seed):
    torch.manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(12, 6), dim=1)
    labels = torch.arange(4).repeat_interleave(3)  # P = 4 people x K = 3 views
    got = batch_triplet_loss(emb, labels, 0.5, mining).item()
    assert got == pytest.approx(brute_force(emb, labels.tolist(), 0.5, mining), rel=1e-4, abs=1e-6)


def test_triplet_gradients():
    torch.manual_seed(0)
    a, p, n = (torch.randn(4, 5, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, p, n: triplet_loss(a, p, n, 0.3), (a, p, n))
    emb = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for mining in ("all", "hard", "semi-hard"):
        assert torch.autograd.gradcheck(lambda e, m=mining: batch_triplet_loss(e, labels, 0.3, m), (emb,))


ANCHORS = np.array([[1.0, 1.0], [3.0, 2.0]])


def targets_for(boxes, classes):
    return build_yolo_targets([np.array(b, np.float32).reshape(-1, 4) for b in boxes],
                              [np.array(c, np.int64) for c in classes], ANCHORS, (4, 4), (64, 64))


def test_targets_put_each_object_in_its_cell_and_best_anchor():
    # A 16x16 box centered in cell (row 1, col 2) (cells are 16 px): shape 1x1 cell -> anchor 0.
    # A 48x32 box centered at (40, 56) -> cell (3, 2), shape 3x2 cells -> anchor 1.
    t = targets_for([[[32, 16, 48, 32], [16, 40, 64, 72]]], [[2, 1]])
    assert t.obj.sum() == 2 and t.obj[0, 0, 1, 2] == 1 and t.obj[0, 1, 3, 2] == 1
    assert t.cls[0, 0, 1, 2] == 2 and t.cls[0, 1, 3, 2] == 1
    assert torch.allclose(t.xy[0, 0, :, 1, 2], torch.tensor([0.5, 0.5]))
    assert torch.allclose(t.wh[0, 1, :, 3, 2], torch.tensor([0.0, 0.0]), atol=1e-6)


def test_yolo_loss_terms():
    t = targets_for([[[32, 16, 48, 32]], []], [[2], []])
    a, c = 2, 3
    pred = torch.zeros(2, a * (5 + c), 4, 4)
    p = pred.view(2, a, 5 + c, 4, 4)
    p[:, :, 4] = -20.0  # confident "no object" everywhere
    p[0, 0, 4, 1, 2] = 20.0  # ... except the responsible anchor
    p[0, 0, 5 + 2, 1, 2] = 20.0  # right class
    loss, parts = yolo_loss(pred, t, a)
    # xy: sigmoid(0) = 0.5 equals the target offsets; wh: 0 equals log(1); objectness and class nearly perfect.
    assert parts["box"] == pytest.approx(0.0, abs=1e-10)
    assert loss.item() < 1e-6
    p[0, 0, 0, 1, 2] = 2.0  # shift the x offset: only the box term grows, by lambda_coord * (sigmoid(2) - .5)^2 / B
    loss2, parts2 = yolo_loss(pred, t, a)
    expected = (torch.sigmoid(torch.tensor(2.0)).item() - 0.5) ** 2 / 2
    assert parts2["box"] == pytest.approx(expected, rel=1e-5)
    assert loss2.item() == pytest.approx(5.0 * expected, rel=1e-3)


def test_yolo_loss_gradients():
    t = targets_for([[[32, 16, 48, 32], [0, 0, 30, 20]]], [[2, 0]])
    targets = YoloTargets(t.obj.double(), t.xy.double(), t.wh.double(), t.cls)
    pred = torch.randn(1, 2 * 8, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: yolo_loss(x, targets, 2)[0], (pred,))


def test_bad_mining():
    with pytest.raises(ValueError, match="mining must be one of"):
        batch_triplet_loss(torch.zeros(2, 2), torch.tensor([0, 1]), mining="easy")
