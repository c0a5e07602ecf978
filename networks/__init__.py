"""Neural network modules shared by every agent."""
from networks.mlp import MLP, default_init
from networks.policies import GaussianActor, VelocityField
from networks.module_dict import ModuleDict

__all__ = ['MLP', 'default_init', 'GaussianActor', 'VelocityField', 'ModuleDict']
