"""The authors' ExORL settings (the paper's Table 1), shared by the ExORL CFGRL agent and AWR on `exorl-*` envs.

IQL: expectile 0.9, discount 0.99, target rate 0.005, twin critics with min; V, Q and actor 3 × 512 with LayerNorm
and mish; Adam at 3e-4 (one Adam over all networks equals the authors' separate Adams: Adam is per parameter and the
losses share no parameters); batch 1024; 1M steps.
"""
import ml_collections

EXORL_NETWORKS = {'actor_hidden_dims': (512, 512, 512), 'value_hidden_dims': (512, 512, 512)}
# Config changes an agent gets when its environment is an exorl-* task (experiment/cli.py applies them to a new
# run's defaults; --config.<key> still overrides them).
ENV_OVERRIDES = {'awr': {**EXORL_NETWORKS, 'exorl_settings': True}}


def apply_env_overrides(config: ml_collections.ConfigDict, env_name: str | None) -> ml_collections.ConfigDict:
    if env_name and env_name.startswith('exorl-'):
        config.update(ENV_OVERRIDES.get(config.agent_name, {}))
    return config
