"""How far two label maps are from the same partition, whatever their ids."""
from clustseg.evaluation.functional import achievable_segmentation_accuracy


def partition_change(a, b) -> float:
    """The fraction of pixels outside their best-matching segment of the other map, the larger
    of the two directions (``1 - ASA``): 0 for the same partition under any renumbering."""
    return max(1.0 - achievable_segmentation_accuracy(a, b),
               1.0 - achievable_segmentation_accuracy(b, a))
