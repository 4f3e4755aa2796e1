# Held-out diagnostic (Table 4b #2 at CamVid-panoptic scale), the definition of
# configs/panoptic/ablations/clustseg_r50_learned-stuff_coco-panoptic.py: scene-adaptive thing
# centers as in the base config, free-parameter stuff queries (query k tied to stuff class k)
# instead of the stuff memory bank. It separates the two halves of the dreamy start: with fully
# learned queries, the stuff classes where ClustSeg trails Mask2Former scored higher. It builds
# on the recipe's void rule (the points-ignore-void config), as its recorded seeds were
# trained, so that config's seeds are its reference (heldout_benchmark.REFERENCES).
_base_ = ['./clustseg_compact_points-ignore-void_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=8, embed_dims=64,
    query_classes=list(range(8))))))
