"""Shared check of the heads' E-step grouping: evaluated stacked along the batch (a GPU's
``STACK_E_STEPS``) or one E-step at a time (the CPU's), the same keys, values and gradients."""
import torch

import clustseg.models.heads.clustseg_head as base


def assert_stacking_changes_nothing(monkeypatch, losses_fn, params, keep=lambda key: True):
    """``losses_fn()`` -> the head's loss dict; ``keep``: which keys to compare (and whose sum
    to differentiate with respect to ``params``)."""

    def run(stack):
        monkeypatch.setitem(base.STACK_E_STEPS, 'cpu', stack)
        torch.manual_seed(0)
        losses = {k: v for k, v in losses_fn().items() if keep(k)}
        grads = torch.autograd.grad(sum(losses.values()), params, retain_graph=True,
                                    allow_unused=True)
        return losses, grads

    stacked, g_grads = run(True)
    single, s_grads = run(False)
    assert set(stacked) == set(single)
    for k in single:
        torch.testing.assert_close(stacked[k], single[k], rtol=1e-5, atol=1e-6, msg=k)
    for a, b in zip(g_grads, s_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
