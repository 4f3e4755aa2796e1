"""Older checkpoints keep loading: keys of modules that moved into the clustering core are
renamed on load, and state added since (a module's ``OPTIONAL_STATE_KEYS``) may be absent."""
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
    """A copy of ``state_dict`` as loading into ``model`` reads it (for checks that compare
    keys without loading, e.g. ``ModelCheckHook``): with the renames loading applies, and with
    the module's own values for the keys a module lists in ``OPTIONAL_STATE_KEYS`` (state its
    ``_load_from_state_dict`` keeps when a checkpoint predates it) where they are absent."""
    out = dict(state_dict)
    for name, m in model.named_modules():
        prefix = f'{name}.' if name else ''
        renames = getattr(m, '_legacy_key_renames', None)
        if renames:
            _rename(out, prefix, renames)
        for key in getattr(m, 'OPTIONAL_STATE_KEYS', ()):
            if prefix + key not in out:
                out[prefix + key] = m.state_dict()[key]
    return out
