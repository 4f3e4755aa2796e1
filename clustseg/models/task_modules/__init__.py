from .fixed_stuff_assigner import FixedStuffHungarianAssigner, fixed_stuff_assignment
from .pq_product_cost import PQProductCost, pq_similarities

__all__ = [
    'FixedStuffHungarianAssigner', 'fixed_stuff_assignment', 'PQProductCost',
    'pq_similarities'
]
