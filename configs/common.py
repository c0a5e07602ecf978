"""Config keys shared by every agent: optimisation, pixel observations and goal relabelling (docs/method.md)."""
import ml_collections


def base_config(goal_conditioned: bool = True) -> ml_collections.ConfigDict:
    """Optimiser, batch, pixel and (for goal-conditioned agents) goal-sampling keys with the paper's defaults."""
    config = ml_collections.ConfigDict()
    config.agent_name = ''  # The registry key, set by agents.get_config; checked against --agent on restore.
    config.lr = 3e-4  # Adam learning rate.
    config.batch_size = 1024  # Transitions per gradient step.
    config.actor_hidden_dims = (512, 512, 512, 512)  # Policy MLP widths (4 × 512 GELU, no LayerNorm).
    config.discount = 0.99  # Geometric goal offsets ~ Geometric(1 − discount); value agents' discount.
    # Pixel observations (agents/pixels.py; cfgrl, gcfbc and gcbc). The paper's visual tasks: impala_small, p_aug 0.5.
    config.encoder = ml_collections.config_dict.placeholder(str)  # Image encoder (networks/encoders.py); None: states.
    config.p_aug = 0.0  # Probability that a training batch gets random-shift augmentation (images only).
    config.aug_padding = 3  # Random shifts of up to this many pixels (edge-replicated padding; authors' code: 3).
    if not goal_conditioned:
        return config
    # Goal relabelling for the actor (OGBench GCDataset semantics); the three probabilities must sum to 1.
    config.p_curgoal = 0.0  # Goal = the current state.
    config.p_trajgoal = 1.0  # Goal = a future state of the same trajectory.
    config.p_randomgoal = 0.0  # Goal = a random dataset state.
    config.geom_sample = False  # Future goals: geometric offsets (True) or uniform up to the trajectory end (False).
    return config
