from .fixed_stuff_assigner import (FixedStuffHungarianAssigner, fixed_stuff_assignment,
                                   fixed_stuff_gt_inds)
from .pq_product_cost import PQProductCost, pq_similarities

__all__ = [
    'FixedStuffHungarianAssigner', 'fixed_stuff_assignment', 'fixed_stuff_gt_inds',
    'PQProductCost', 'pq_similarities'
]
