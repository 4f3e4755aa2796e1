"""mmdet's Swin Transformer with a pretrained load that fails instead of skipping keys."""
from mmdet.models.backbones import SwinTransformer
from mmengine.logging import print_log

from clustseg.registry import MODELS
from clustseg.utils.pretrained import PretrainedKeysError, check_loaded_keys, skip_pretrained


@MODELS.register_module()
class StrictSwinTransformer(SwinTransformer):
    """mmdet's ``SwinTransformer`` (same arguments, modules and state dict) whose
    ``init_weights`` checks what the pretrained checkpoint filled.

    mmdet loads ``init_cfg.checkpoint`` with ``strict=False`` and drops every key outside
    ``backbone.``, so an official Swin release loaded with ``convert_weights=False`` leaves the
    backbone random without an error. Here the same load (mmdet's ``swin_converter`` with
    ``convert_weights=True``, its position-table handling) is followed by a check: the only
    module keys allowed to stay unfilled are the per-output LayerNorms ``norm{i}`` that mmdet
    adds for dense prediction (the classifier has none), and the only checkpoint keys allowed
    to stay unused are the classifier's final ``norm`` and the shifted-window ``attn_mask``
    buffers, which mmdet recomputes per input. Anything else raises
    :class:`~clustseg.utils.pretrained.PretrainedKeysError` naming the keys. With the offline
    switch at ``none`` the pretrained load is skipped (random initialisation, as mmdet's
    ``init_cfg=None``).
    """

    def init_weights(self):
        cfg = self.init_cfg
        if cfg is None or not skip_pretrained(cfg.get('checkpoint')):
            if cfg is not None and not self.convert_weights:
                print_log('StrictSwinTransformer: convert_weights=False expects a checkpoint '
                          'already in mmdet key layout', logger='current', level=30)
            return self._checked_init() if cfg is not None else super().init_weights()
        self.init_cfg = None
        try:
            super().init_weights()
        finally:
            self.init_cfg = cfg

    def _checked_init(self):
        record = {}
        load = self.load_state_dict

        def recording_load(state_dict, strict=True, assign=False):
            record['result'] = load(state_dict, strict=False, assign=assign)
            return record['result']

        self.load_state_dict = recording_load  # mmdet calls self.load_state_dict(sd, False)
        try:
            super().init_weights()
        except IndexError:  # mmdet kept no key: none started with 'backbone.'
            record.pop('result', None)
        finally:
            del self.load_state_dict
        if 'result' not in record:
            raise PretrainedKeysError(
                f"pretrained weights {self.init_cfg['checkpoint']} have no key under "
                "'backbone.' (mmdet's layout); an official Swin release needs "
                'convert_weights=True')
        result = record['result']
        check_loaded_keys(self.init_cfg['checkpoint'], result.missing_keys,
                          result.unexpected_keys,
                          new_keys=[rf'^norm{i}\.' for i in self.out_indices],
                          unused_keys=[r'^norm\.', r'\.attn_mask$'])
