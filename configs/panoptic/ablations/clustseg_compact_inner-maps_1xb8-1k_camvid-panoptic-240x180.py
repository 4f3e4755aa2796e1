# Held-out check of the map-only inner supervision (not a paper row): the E-steps before the
# last of each decoder layer predict nothing and are supervised through their assignment maps
# only (InnerEStepMaps); everything else as the benchmark config.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(deep_supervision=dict(type='InnerEStepMaps')))
