"""AWR baseline: IQL value + Gaussian actor trained with advantage weights exp(A/β), clipped."""
import ml_collections

from configs.iql import iql_config


def get_config() -> ml_collections.ConfigDict:
    config = iql_config()
    config.alpha = 3.0  # Inverse temperature 1/β of the advantage weights (paper sweeps 1, 3, 10, 30).
    config.max_weight = 100.0  # Clip of exp(A/β).
    # The authors' ExORL AWR (set for exorl-* environments, configs/exorl.py): LayerNorm-then-mish networks, a
    # learned log-std, advantages from the target critic.
    config.exorl_settings = False
    return config
