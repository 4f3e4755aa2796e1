"""Registration helpers.

ClustSeg modules are registered directly into the OpenMMLab registries so that a config only
needs ``custom_imports=dict(imports=['clustseg'])``. Task-agnostic models are registered into
*both* ``mmdet.registry.MODELS`` and ``mmseg.registry.MODELS`` so that they build under either
``default_scope`` (mmdet for panoptic/instance, mmseg for semantic/superpixel).
"""
from mmdet.registry import DATA_SAMPLERS as DET_DATA_SAMPLERS
from mmdet.registry import DATASETS as DET_DATASETS
from mmdet.registry import LOOPS as DET_LOOPS
from mmdet.registry import METRICS as DET_METRICS
from mmdet.registry import MODELS as DET_MODELS
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmseg.registry import DATA_SAMPLERS as SEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import LOOPS as SEG_LOOPS
from mmseg.registry import METRICS as SEG_METRICS
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS


class _MultiRegistry:
    """Registers a class into several registries at once; builds from the first."""

    def __init__(self, *registries):
        self.registries = registries

    def register_module(self, name=None, force=False, module=None):
        def _register(cls):
            for reg in self.registries:
                reg.register_module(name=name, force=force, module=cls)
            return cls

        if module is not None:
            return _register(module)
        return _register

    def build(self, cfg, *args, **kwargs):
        return self.registries[0].build(cfg, *args, **kwargs)

    def get(self, key):
        return self.registries[0].get(key)

    def build_of(self, base: type, cfg, key: str, kind: str):
        """``cfg`` -> an instance of ``base``: ``cfg`` itself if it is one, else built from a
        registered name or a ``dict(type=...)`` (a name or a class). Anything else, and a
        ``TypeError`` / ``ValueError`` of the constructor, is a ``ValueError`` naming the
        config ``key`` (with the registered names of ``kind``, the subclasses of ``base``,
        aliases included)."""
        if isinstance(cfg, base):
            return cfg
        spec = dict(type=cfg) if isinstance(cfg, str) else cfg
        t = spec.get('type') if isinstance(spec, dict) else None
        cls = t if isinstance(t, type) else self.get(t) if isinstance(t, str) else None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            names = sorted(n for n, c in self.registries[0].module_dict.items()
                           if isinstance(c, type) and issubclass(c, base))
            raise ValueError(f'{key}={cfg!r} is not a registered {kind}; registered: {names}')
        try:
            return self.build(dict(spec, type=cls))
        except (TypeError, ValueError) as e:
            raise ValueError(f'{key}={cfg!r}: {e}') from e


MODELS = _MultiRegistry(DET_MODELS, SEG_MODELS)
DATASETS = _MultiRegistry(SEG_DATASETS, DET_DATASETS)
TRANSFORMS = _MultiRegistry(SEG_TRANSFORMS, DET_TRANSFORMS)
METRICS = _MultiRegistry(SEG_METRICS, DET_METRICS)
DATA_SAMPLERS = _MultiRegistry(SEG_DATA_SAMPLERS, DET_DATA_SAMPLERS)
LOOPS = _MultiRegistry(SEG_LOOPS, DET_LOOPS)
