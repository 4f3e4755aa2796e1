from .connectivity import enforce_connectivity

__all__ = ['enforce_connectivity']
