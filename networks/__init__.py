"""Neural network modules shared by every agent."""
from networks.encoders import ENCODERS, ImpalaEncoder, make_encoder
from networks.mlp import MLP, default_init
from networks.module_dict import ModuleDict
from networks.policies import (
    GaussianActor,
    LogScalar,
    OptimalityVelocity,
    TanhGaussianActor,
    VelocityField,
    unit_gaussian_nll,
)
from networks.value import ValueNet

__all__ = ['ENCODERS', 'ImpalaEncoder', 'make_encoder', 'MLP', 'default_init', 'GaussianActor', 'LogScalar',
           'OptimalityVelocity', 'TanhGaussianActor', 'VelocityField', 'unit_gaussian_nll', 'ModuleDict', 'ValueNet']
