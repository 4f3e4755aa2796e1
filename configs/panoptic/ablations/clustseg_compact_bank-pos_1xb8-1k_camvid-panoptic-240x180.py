# Held-out diagnostic of the stuff memory bank: a learned query position per stuff class
# (MemoryBankInitializer(learned_pos=True)) added to the bank's class centers, which Eq. 7
# defines without one. Free stuff queries (the learned-stuff diagnostic, Table 4b #2) scored
# higher than the bank here; besides being free parameters they carry a learned position, as
# the image-adaptive thing centers carry a pooled one, while the bank's stuff centers start as
# near-copies of each other's class means and carry none. This run separates the two: bank
# centers with positions. Like the learned-stuff diagnostic it builds on the recipe's void rule
# (the points-ignore-void config), whose seeds are its reference (heldout_benchmark.REFERENCES).
_base_ = ['./clustseg_compact_points-ignore-void_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(learned_pos=True))))
