"""The authors' ExORL settings (the paper's Table 1), shared by the ExORL CFGRL agent and AWR on `exorl-*` envs.

IQL: expectile 0.9, discount 0.99, target rate 0.005, twin critics with min; V, Q and actor 3 × 512 with LayerNorm
and mish; Adam at 3e-4 (one Adam over all networks equals the authors' separate Adams: Adam is per parameter and the
losses share no parameters); batch 1024; 1M steps.
"""
EXORL_NETWORKS = {'actor_hidden_dims': (512, 512, 512), 'value_hidden_dims': (512, 512, 512)}
# AWR as the authors run it on ExORL: the ExORL family (datasets/families.py) gives these to a new awr run's config
# and says so; --config.<key> still overrides them.
AWR_EXORL = {**EXORL_NETWORKS, 'exorl_settings': True}
