"""Imported first by main.py, before the imports that take seconds (JAX): until main() runs, a stopping signal
(SIGINT, SIGTERM, SIGUSR1) prints one line and exits at once with main.py's status for it, as nothing is written
yet. main() then installs handlers that raise faults.Interrupted, reported after cleaning up."""
from experiment import faults

faults.stop_on_signals(faults.MAIN_SIGNAL_STATUS, at_once='before any work; nothing was written.')
