"""What main.py wires together: command line (cli), run directories, checkpoints, the training loop, sessions."""
