"""Dataset names, parsed in one place: OGBench's `<env>-<type>[-oraclerep|-singletask[-taskN]]-v0` and ExORL's
`exorl-<domain>-<task>`. What a name means for training and evaluation is decided by its family
(datasets.families), which asks here."""
import dataclasses
from typing import List

EXORL_PREFIX = 'exorl-'
DATASET_TYPES = ('navigate', 'stitch', 'explore', 'play', 'noisy')  # Every OGBench dataset name has one.


def is_exorl(name: str) -> bool:
    return name.startswith(EXORL_PREFIX)


@dataclasses.dataclass(frozen=True)
class OGBenchName:
    """An OGBench dataset name split as `ogbench.make_env_and_datasets` splits it.

    pointmaze-medium-navigate-oraclerep-v0: env_id pointmaze-medium-v0, base pointmaze-medium-navigate-v0;
    cube-single-play-singletask-task2-v0: env_id cube-single-singletask-task2-v0, base cube-single-play-v0.
    """

    name: str
    head: List[str]  # <env parts>-<type>, without the variant and the version.
    variant: List[str]  # ['singletask'] or ['singletask', 'taskN'] (kept in the env id); [] otherwise.
    version: str

    @classmethod
    def parse(cls, name: str) -> 'OGBenchName':
        splits = name.split('-')
        if 'singletask' in splits:
            pos = splits.index('singletask')
            return cls(name, splits[:pos], splits[pos:-1], splits[-1])
        if 'oraclerep' in splits:  # Goals are oracle representations; the data and the environment are the plain ones.
            return cls(name, splits[:-2], [], splits[-1])
        return cls(name, splits[:-1], [], splits[-1])

    @property
    def dataset_type(self) -> str:
        return self.head[-1] if self.head else ''

    @property
    def env_id(self) -> str:
        """The gymnasium id of the environment behind the dataset."""
        return '-'.join(self.head[:-1] + self.variant + [self.version])

    @property
    def base(self) -> str:
        """The dataset file stem: variants read the plain dataset's file."""
        return '-'.join(self.head + [self.version])

    @property
    def single_task(self) -> bool:
        return bool(self.variant)


def base_dataset_name(name: str) -> str:
    """The dataset file stem behind an OGBench name: pointmaze-medium-navigate-oraclerep-v0 →
    pointmaze-medium-navigate-v0, cube-single-play-singletask-task2-v0 → cube-single-play-v0."""
    return OGBenchName.parse(name).base


def is_ogbench_name(name: str) -> bool:
    """Whether `name` is <registered env>-<dataset type>[-variant]-v0, as ogbench derives the env id."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the OGBench environments)

    parsed = OGBenchName.parse(name)
    return parsed.dataset_type in DATASET_TYPES and parsed.env_id in gymnasium.registry
