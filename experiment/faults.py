"""Write faults (disk full, read-only or forbidden place) and stopping signals as one line instead of a screen of
tracebacks.

Orbax (through TensorStore) reports a full disk as an exception whose text holds RESOURCE_EXHAUSTED or the
operating system's message rather than as an OSError, so faults are recognised by errno and by message.
"""
import errno
import os
import re
import signal
import sys
import tempfile
import threading
from typing import Dict, Optional

EXIT_WRITE_FAULT = 74  # sysexits' EX_IOERR.
_FAULTS = {  # errno -> what the user sees.
    errno.ENOSPC: 'no space left on the device',
    errno.EDQUOT: 'disk quota exceeded',
    errno.EROFS: 'read-only file system',
    errno.EACCES: 'permission denied',
    errno.EPERM: 'operation not permitted',
}
_MESSAGES = {  # Text of wrapped errors -> the errno it stands for.
    'RESOURCE_EXHAUSTED': errno.ENOSPC, 'No space left on device': errno.ENOSPC, 'Disk quota exceeded': errno.EDQUOT,
    'Read-only file system': errno.EROFS, 'Permission denied': errno.EACCES,
}


def write_fault(exc: BaseException) -> Optional[str]:
    """'what failed at which file' if `exc` (or an exception it was raised from) is a write fault, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FAULTS:
            where = f' at {exc.filename}' if exc.filename else ''
            return f'{_FAULTS[exc.errno]}{where}'
        text = str(exc)
        for needle, code in _MESSAGES.items():
            if needle in text:
                path = re.search(r'(/[^\s"\'{}:,]+)', text)
                return f'{_FAULTS[code]}' + (f' at {path.group(1)}' if path else '')
        # An error raised `from None` (e.g. check_writable's own message) stands for itself, not its context.
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def check_writable(path: str, flag: str) -> None:
    """Raises PermissionError naming `flag` unless files can be created in `path` (or, if it does not exist yet,
    in its nearest existing parent, where it would be made). Creates nothing that stays."""
    target = os.path.abspath(os.path.expanduser(path))
    while not os.path.isdir(target) and os.path.dirname(target) != target:
        target = os.path.dirname(target)
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as e:
        reason = _FAULTS.get(e.errno, e.strerror)
        raise PermissionError(f'{flag}: cannot write in {target} ({reason}).') from None


def report_thread_faults() -> None:
    """Background writers (TensorBoard's) that hit a write fault print one line instead of a traceback."""
    previous = threading.excepthook

    def hook(args) -> None:
        fault = write_fault(args.exc_value)
        if fault is None:
            previous(args)
        else:
            print(f'warning: background writer stopped: {fault}.', file=sys.stderr, flush=True)

    threading.excepthook = hook


# ------------------------------------------------------------------------------------------------------------------
# Signals outside the training loop's safe points (which experiment.loop.GracefulStop handles).
# ------------------------------------------------------------------------------------------------------------------
# main.py's exit status for each stopping signal, as experiment.loop's: SIGTERM and SIGUSR1 (a cluster's preemption
# or time limit) ask the launcher to requeue (75, sysexits' EX_TEMPFAIL); Ctrl-C is 130.
MAIN_SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 75, signal.SIGUSR1: 75}


class Interrupted(BaseException):
    """A stopping signal, raised in the main thread (a BaseException, so `except Exception` does not swallow it)."""

    def __init__(self, signum: int, status: int):
        super().__init__(signum, status)
        self.signum, self.status = signum, status

    @property
    def name(self) -> str:
        return 'Ctrl-C' if self.signum == signal.SIGINT else signal.Signals(self.signum).name


def stop_on_signals(statuses: Dict[int, int], at_once: Optional[str] = None) -> None:
    """Handles each signal of `statuses` (signal -> exit status) in this process's main thread: with `at_once`
    (what nothing was written means here), print `error: stopped by <signal> <at_once>` and exit at once, for the
    time before any file is made; else raise Interrupted once, the later signals being ignored while the caller
    cleans up and reports."""

    def exit_now(signum, frame) -> None:
        name = 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name
        os.write(2, f'error: stopped by {name} {at_once}\n'.encode())
        os._exit(statuses[signum])

    def raise_once(signum, frame) -> None:
        for s in statuses:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum, statuses[signum])

    if threading.current_thread() is threading.main_thread():
        for s in statuses:
            signal.signal(s, exit_now if at_once else raise_once)


def end_with_parent() -> None:
    """For a worker process: ignore Ctrl-C (the parent's to handle) and get SIGTERM when the parent dies, however
    it dies (Linux; elsewhere a no-op), so that no worker outlives its parent to write into removed folders."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # The parent died before prctl took effect.
        os._exit(1)
