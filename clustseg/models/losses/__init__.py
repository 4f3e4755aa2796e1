from .binary_mask_losses import (binary_corner_codes, mask_bce_dice_terms, matched_mask_terms,
                                 read_binary_points, read_mask_points, sigmoid_class_loss,
                                 uncertain_point_coords)
from .instance_discrimination_loss import (kept_pair_logsumexp,
                                           pixelwise_instance_discrimination_loss)
from .mask_id_loss import mask_id_cross_entropy
from .pixel_sampling import area_weighted_sample, inverse_segment_area
from .pq_style_loss import pq_style_loss, void_ratio
from .query_targets import (QueryTargets, build_query_targets, gather_log_softmax,
                            gather_matched, gather_query_labels, gather_query_targets,
                            gt_queries, pad_stack, void_pixels)
from .reconstruction_loss import SuperpixelReconstructionLoss
from .semantic_aux_loss import semantic_aux_loss
from .slic_loss import SLICLoss
from .superpixel_losses import (LAB_SCALE, cluster_means, lab_target, pixel_coords,
                                reconstruction_loss, remap_labels, rgb_to_lab,
                                slic_loss, soft_reconstruct)

__all__ = [
    'SLICLoss', 'SuperpixelReconstructionLoss', 'LAB_SCALE', 'cluster_means', 'lab_target',
    'pixel_coords', 'reconstruction_loss', 'remap_labels', 'rgb_to_lab', 'slic_loss',
    'soft_reconstruct', 'QueryTargets', 'build_query_targets', 'gather_log_softmax',
    'gather_matched', 'gather_query_labels', 'gather_query_targets', 'gt_queries', 'pad_stack',
    'void_pixels',
    'pq_style_loss', 'void_ratio', 'mask_id_cross_entropy',
    'pixelwise_instance_discrimination_loss', 'kept_pair_logsumexp', 'semantic_aux_loss',
    'inverse_segment_area', 'area_weighted_sample', 'read_mask_points', 'uncertain_point_coords',
    'mask_bce_dice_terms', 'sigmoid_class_loss', 'matched_mask_terms', 'binary_corner_codes',
    'read_binary_points'
]
