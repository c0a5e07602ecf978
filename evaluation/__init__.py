"""Evaluation of agents in their environments, OGBench or ExORL (docs/method.md#evaluation).

    evaluation.rollout   lockstep and sequential rollouts of tasks × episodes × guidance weights, the Evaluator
    evaluation.envs      one environment per episode, stepped in this process or in worker processes (no JAX)
    evaluation.results   EvalResult: score tables (success or return), eval.csv rows and summary.json
    evaluation.plots     the success-vs-w / success-vs-step figure

The package imports nothing itself, so that environment workers (`python -m evaluation.envs`) start without JAX.
"""
