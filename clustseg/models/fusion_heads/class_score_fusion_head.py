"""mmdet's ``MaskFormerFusionHead`` for heads that score each class of a query on its own."""
import torch
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from clustseg.registry import MODELS


@MODELS.register_module()
class ClassScoreFusionHead(MaskFormerFusionHead):
    """``MaskFormerFusionHead`` whose class input is, per query, the log of an independent
    probability for each class: ``num_queries x C`` (no no-object column), what the ClustSeg
    heads' ``predict`` returns (a thing query: the sigmoids of its class FFN; a stuff query:
    its own class's probability, the others ``-inf``). Masks as mmdet's: logits whose sigmoid
    is the mask probability.

    * Panoptic: a query's best class and its probability, as mmdet's softmax gives them for a
      distribution over the classes and no-object (:meth:`panoptic_postprocess`); the same
      thresholds (``object_mask_thr``, ``iou_thr``, ``filter_low_score``).
    * Instance: mmdet's protocol over every (query, class) pair: the ``max_per_image`` pairs
      of highest class probability, the thing classes kept, each scored by its class
      probability times the mean mask probability inside its binary mask
      (:meth:`instance_postprocess`), so that a query can give a detection under each of
      several classes, as Mask2Former's evaluation allows.
    """

    def panoptic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> PixelData:
        score, label = mask_cls.float().exp().max(dim=-1)  # K
        # as a distribution: the score on its class, the rest on no-object (last column)
        dist = score.new_zeros(score.shape[0], self.num_classes + 1)
        dist.scatter_(1, label[:, None], score[:, None])
        dist[:, -1] = 1.0 - score
        return super().panoptic_postprocess(dist.clamp(min=1e-8).log(), mask_pred)

    def instance_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> InstanceData:
        k, c = mask_cls.shape
        if c != self.num_classes:
            raise ValueError(f'ClassScoreFusionHead: class scores must be K x {self.num_classes} '
                             f'(no no-object column), got {tuple(mask_cls.shape)}')
        scores = mask_cls.float().exp().flatten()  # K C, query-major
        top = min(int(self.test_cfg.get('max_per_image', 100)), scores.numel())
        score, pair = scores.topk(top, sorted=False)
        label, query = pair % c, torch.div(pair, c, rounding_mode='floor')
        thing = label < self.num_things_classes
        score, label, query = score[thing], label[thing], query[thing]
        logits = mask_pred[query]
        binary = logits > 0
        prob = logits.float().sigmoid()
        mask_score = (prob * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        return InstanceData(bboxes=mask2bbox(binary), labels=label, scores=score * mask_score,
                            masks=binary)
