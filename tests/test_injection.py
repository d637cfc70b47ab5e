import math

import pytest
import torch

from clothparse.categories import CLOTHING
from clothparse.models.injection import (
    PRIOR_LOGIT,
    apply_hard,
    forbidden_logit,
    inject_prior,
    parse_prior,
)

NAN = float("nan")
DRESS, SKIRT = CLOTHING.index("dress"), CLOTHING.index("skirt")


def _same(a, b):
    """Equal, NaN matching NaN."""
    return torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))


def test_parse_prior():
    p = parse_prior("skirt, -dress")
    assert p[SKIRT] == 1 and p[DRESS] == 0
    assert int(torch.isnan(p).sum()) == 6
    shoe_bag = torch.full((8,), NAN)
    shoe_bag[[CLOTHING.index("shoe"), CLOTHING.index("bag")]] = 1.0
    assert _same(parse_prior(" +Shoe,BAG "), shoe_bag)
    assert bool(torch.isnan(parse_prior("")).all())
    with pytest.raises(ValueError, match=r"unknown clothing class 'skrt'.*skirt"):
        parse_prior("skrt")
    with pytest.raises(ValueError, match="both present and absent"):
        parse_prior("skirt,-skirt")


def test_inject_prior_replaces_known_logits_only():
    logits = torch.randn(2, 8, requires_grad=True)
    assert inject_prior(logits, None) is logits
    assert torch.equal(inject_prior(logits, torch.full((2, 8), NAN)), logits)
    prior = torch.full((8,), NAN)
    prior[DRESS], prior[SKIRT] = 0, 1
    out = inject_prior(logits, prior)                       # an 8-vector applies to every image
    assert out[:, DRESS].tolist() == [-PRIOR_LOGIT] * 2 and out[:, SKIRT].tolist() == [PRIOR_LOGIT] * 2
    keep = [i for i in range(8) if i not in (DRESS, SKIRT)]
    assert torch.equal(out[:, keep], logits[:, keep])
    out.sum().backward()                                    # known entries take no gradient, the rest do
    assert logits.grad[:, DRESS].abs().sum() == 0 and torch.all(logits.grad[:, keep] == 1)
    with pytest.raises(ValueError, match="1 \\(present\\), 0 \\(absent\\) or NaN"):
        inject_prior(logits, torch.full((2, 8), 0.5))
    with pytest.raises(ValueError, match="B×8"):
        inject_prior(logits, torch.zeros(2, 7))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_apply_hard_forbids_absent_classes(dtype):
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(2, 9, 8, 6, generator=g)
    seg[:, 1 + DRESS] += 20                                 # dress wins everywhere
    seg = seg.to(dtype)
    assert bool((seg.argmax(1) == 1 + DRESS).all())
    no_dress = parse_prior("-dress")
    hard = apply_hard(seg, no_dress)
    assert not bool((hard.argmax(1) == 1 + DRESS).any())
    reference = seg.float().index_fill(1, torch.tensor([1 + DRESS]), -math.inf)  # independent: dress → -inf
    assert torch.equal(hard.argmax(1), reference.argmax(1))
    assert torch.isfinite(torch.log_softmax(hard.float(), 1)).all() and torch.isfinite(hard.softmax(1)).all()
    assert hard[:, 1 + DRESS].max() == forbidden_logit(dtype)
    others = [c for c in range(9) if c != 1 + DRESS]
    assert torch.equal(hard[:, others], seg[:, others])
    assert torch.equal(apply_hard(seg, torch.full((2, 8), NAN)), seg)
    assert torch.equal(apply_hard(seg, parse_prior("dress,skirt")), seg)   # "present" is not forced
    assert apply_hard(seg, None) is seg
    per_image = torch.full((2, 8), NAN)
    per_image[1, DRESS] = 0                                 # only image 1 has "no dress"
    out = apply_hard(seg, per_image)
    assert bool((out[0].argmax(0) == 1 + DRESS).all()) and not bool((out[1].argmax(0) == 1 + DRESS).any())
    with pytest.raises(ValueError, match="B×8"):
        apply_hard(seg, torch.zeros(3, 8))


def test_forbidden_logit_is_finite_in_every_float_dtype():
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        v = forbidden_logit(dtype)
        assert math.isfinite(v) and math.isfinite(torch.tensor([v], dtype=dtype).sub(1000).item())
