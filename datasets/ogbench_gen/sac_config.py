"""SAC for the ant expert (datasets.ogbench_gen.train_expert): OGBench's data-generation hyperparameters."""
import ml_collections

from configs.common import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config(goal_conditioned=False)
    config.agent_name = 'sac'  # Not in the agents registry (an online expert, not an offline agent of main.py).
    config.lr = 1e-4  # Adam learning rate (one optimiser for actor, critics and temperature).
    config.batch_size = 256  # Transitions per gradient step.
    config.actor_hidden_dims = (256, 256)  # Actor MLP widths (GELU).
    config.value_hidden_dims = (256, 256)  # Each of the twin critics (GELU, no LayerNorm).
    config.discount = 0.99
    config.tau = 0.005  # Polyak rate of the target critics.
    config.target_entropy_multiplier = 0.5  # Target entropy = −multiplier · action dimension.
    config.actor_final_init_scale = 0.01  # Scale of the actor's final layers' initialiser.
    return config
