# ClustSeg panoptic model (paper §4.1, App. A.1): dreamy start with 75 image-adaptive thing
# centers + 53 memory-bank stuff centers = 128, trained with Eq. 12 (ClustSegPanopticHead;
# docs/losses.md says what each weight multiplies); things classified by a sigmoid FFN.
_base_ = ['./clustseg_r50_maskformer.py']
num_things_classes = 80
num_stuff_classes = 53
embed_dims = 256
model = dict(
    panoptic_head=dict(
        type='ClustSegPanopticHead',
        # kMaX-DeepLab's 128-d pixel embedding (mask logits and instance discrimination read
        # it); the instance model keeps Mask2Former's 256
        mask_dims=128,
        initializer=dict(
            type='PanopticInitializer',
            stuff_class_offset=num_things_classes,
            # K thing tokens pooled from PE(I) by learned per-query maps: on the 3-image
            # overfit PQ^Th 58.0 at 500 iterations vs 42.8 with the top-K pixels (model zoo)
            thing_initializer=dict(type='PooledImageAdaptiveInitializer', in_channels=256,
                                   embed_dims=embed_dims, num_queries=75, pos_dims=64),
            # Eq. 7's class centers, without query positions (learned_pos=True: the opt-in
            # ablations/clustseg_r50_bank-pos_coco-panoptic.py, docs/recipes.md)
            stuff_initializer=dict(type='MemoryBankInitializer', num_classes=num_stuff_classes,
                                   feat_dims=256, embed_dims=embed_dims, queue_size=256,
                                   samples_per_class=16, learned_pos=False)),
        # λ_th, λ_st, λ_aux (paper); kMaX-DeepLab's COCO weights inside L_aux; thing FFN BCE;
        # e_step: mask-ID CE of every E-step's own assignment map M (our weight)
        loss_weights=dict(thing=5.0, stuff=3.0, aux=1.0, pq_cls=3.0, pq_mask=3.0,
                          mask_id=0.3, insdis=1.0, sem=1.0, thing_cls=2.0, e_step=0.3)),
    train_cfg=dict(
        # kMaX's Hungarian weight (class prob x mask dice) for things; stuff queries are tied
        # to their memory-bank class
        assigner=dict(type='FixedStuffHungarianAssigner', num_things_classes=num_things_classes,
                      match_costs=[dict(type='PQProductCost')]),
        num_insdis_samples=4096,
        num_sem_samples=4096,
        mask_activation='softmax',
        recompute_losses=True,
        # thing / stuff CE + dice on Mask2Former's uncertainty-sampled points (its 12544 for
        # 1024^2 crops), read from the input-resolution GT: sub-cell extents and thin
        # segments are supervised (docs/losses.md, docs/model_zoo.md)
        mask_num_points=12544,
        # kMaX's void rule on those points: the points no GT segment covers (unlabelled,
        # padding) are left out, as the dense terms leave out void pixels; Mask2Former counts
        # them as negatives (held-out check: docs/model_zoo.md, docs/recipes.md)
        points_ignore_void=True),
    # mIoU_pan (PanopticSemSegMetric) from Mask2Former's dense semantic inference, as the
    # paper's Table 1 baselines compute it (docs/recipes.md)
    panoptic_fusion_head=dict(semantic_map=True),
    # a thing query's score is its FFN's sigmoid (a stuff query's, its softmax class
    # probability): keep a segment when its class is more likely present than not
    test_cfg=dict(object_mask_thr=0.5))
