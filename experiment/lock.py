"""The lock of a run directory: one process at a time trains or resumes a run.

The lock is an advisory `flock` on `<run>/.lock`, held for the life of the process. The kernel drops it when the
holder exits, however it dies (SIGKILL, a node losing power on a local disk), so a lock left by a killed process
never blocks a later --resume. The file itself stays and records the last holder (host, pid) for the message.
"""
import errno
import fcntl
import os
import socket
from typing import Optional

LOCK_FILE = '.lock'


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """Holds the lock of `run_path` from `acquire()` until `release()` or the process's exit."""

    def __init__(self, run_path: str):
        self.path = os.path.join(run_path, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> 'RunLock':
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.read(fd, 256).decode(errors='replace').strip() or 'another process'
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunLockedError(f'{os.path.dirname(self.path)} is in use by {holder}; wait for it to finish '
                                     'or stop it (its lock goes with it), then --resume.') from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f'pid {os.getpid()} on {socket.gethostname()}\n'.encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # Closing the descriptor drops the flock.
            self._fd = None
