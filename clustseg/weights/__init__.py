"""Weights shipped inside the package (package data, see ``setup.py``).

:data:`SUPERPIXEL_CONFIG` / :data:`SUPERPIXEL_CHECKPOINT`: the shipped superpixel model
(``clustseg_compact-nodec_1xb4-3k_bsds500-superpixel``, ``docs/model_zoo.md``), a
self-contained config and its weights-only checkpoint, read by :func:`clustseg.superpixels`
and the ``clustseg-superpixels`` command. The training config is
``configs/superpixel/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py`` in the repository.
"""
import os.path as osp

_HERE = osp.dirname(osp.abspath(__file__))

#: Self-contained config of the shipped superpixel model (model + test pipeline).
SUPERPIXEL_CONFIG = osp.join(_HERE, 'clustseg_compact-nodec_bsds500-superpixel.py')
#: Its weights (3.1 MiB; sha256 in ``docs/model_zoo.md``).
SUPERPIXEL_CHECKPOINT = osp.join(_HERE, 'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth')

__all__ = ['SUPERPIXEL_CONFIG', 'SUPERPIXEL_CHECKPOINT']
