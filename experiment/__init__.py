"""The runner around main.py: settings (every flag and a run's saved settings), cli (parsing and validation),
restore (--resume and --eval_only), trainer (compiled chunks), loop (the training loop), checkpoints, run_dir,
session (run directories, the evaluator, --eval_only), lock and faults. docs/layout.md draws one run's path."""
