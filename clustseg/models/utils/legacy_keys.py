"""Checkpoints written before the clustering core keep loading: their keys are renamed on load."""
import re
from typing import Sequence, Tuple

#: (pattern, replacement) applied to a key after the owner's prefix: the modules that moved into
#: ``ClusteringCore`` / ``MaskPredictor`` and the decoder FFN without its dropout slot
CORE_RENAMES = (
    (r'^(pixel_decoder|initializer|decoder)\.', r'core.\1.'),
    (r'^out_norm\.', 'mask_predictor.norm.'),
    (r'^mask_embed\.', 'mask_predictor.embed.'),
    (r'^mask_proj\.', 'mask_predictor.proj.'),
    (r'^(core\.decoder\.layers\.\d+\.ffn)\.3\.', r'\1.2.'),
)


def _rename(state_dict: dict, prefix: str, renames) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = key[len(prefix):]
        for pattern, repl in renames:
            new = re.sub(pattern, repl, new)
        if prefix + new != key and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(key)


def rename_legacy_keys(module, renames: Sequence[Tuple[str, str]] = CORE_RENAMES) -> None:
    """Registers a load-state-dict pre-hook on ``module`` that renames the keys under its prefix
    by ``renames`` (applied in order), so that strict loading of an older checkpoint works."""
    module._legacy_key_renames = tuple(renames)
    module._register_load_state_dict_pre_hook(
        lambda state_dict, prefix, *args: _rename(state_dict, prefix, renames))


def upgrade_legacy_keys(model, state_dict: dict) -> dict:
    """A copy of ``state_dict`` with the renames that loading into ``model`` would apply (for
    checks that compare keys without loading, e.g. ``ModelCheckHook``)."""
    out = dict(state_dict)
    for name, m in model.named_modules():
        renames = getattr(m, '_legacy_key_renames', None)
        if renames:
            _rename(out, f'{name}.' if name else '', renames)
    return out
