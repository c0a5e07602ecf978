"""The integer labels of the label-conditioned velocity fields, written once. Row 0 of every label embedding is
∅, the unconditional velocity that label dropout trains and guidance starts from."""

LABEL_UNCOND = 0  # ∅.
LABEL_NEGATIVE, LABEL_OPTIMAL = 1, 2  # Value-guided CFGRL's o = 0 and o = 1 (OptimalityVelocity: 3 rows).
LABEL_POSITIVE = 1  # ExORL CFGRL's positive advantage (networks.exorl.LabelVelocity: 2 rows, ∅ and positive).
