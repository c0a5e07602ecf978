"""`datasets.files.ensure_dataset` for the data factory's own use: a missing dataset that cannot be downloaded is
regenerated in this process (training runs the command in a child process instead)."""
import sys

from datasets import files
from datasets.names import base_dataset_name, is_ogbench_name
from datasets.ogbench_gen import generate as gen
from datasets.ogbench_gen.recipes import get_recipe


def ensure_dataset(name: str, dataset_dir: str | None = None, regenerate: bool = True, **sizes) -> str:
    """The train .npz path of `name`, checked, downloaded or regenerated here (files.ensure_dataset). A name that
    is not OGBench's fails at once (UnknownDatasetError listing the regenerable ones), without a download."""
    if not is_ogbench_name(base_dataset_name(name)):
        get_recipe(name)
    return files.ensure_dataset(name, dataset_dir, _regenerate if regenerate else False, **sizes)


def _regenerate(base: str, seed: int, **sizes) -> str:
    get_recipe(base)  # Not regenerable: UnknownDatasetError, reported with the download's failure.
    print(f'Dataset {base}: regenerating it offline with OGBench\'s environment and scripted oracle (published '
          f'recipe, seed {seed}); this matches the published data in distribution, not byte for byte.',
          file=sys.stderr, flush=True)
    return gen.generate(base, seed=seed, **sizes)[0]
