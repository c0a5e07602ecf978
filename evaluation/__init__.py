"""Evaluation of goal-conditioned agents on OGBench (docs/method.md#evaluation).

    evaluation.rollout   lockstep and sequential rollouts of tasks × episodes × guidance weights, the Evaluator
    evaluation.envs      one environment per episode, stepped in this process or in worker processes (no JAX)
    evaluation.results   EvalResult: success tables, eval.csv rows and summary.json
    evaluation.plots     the success-vs-w / success-vs-step figure

The package imports nothing itself, so that environment workers (`python -m evaluation.envs`) start without JAX.
"""
