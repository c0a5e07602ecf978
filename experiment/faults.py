"""Write faults (disk full, read-only or forbidden place) as one line instead of a screen of tracebacks.

Orbax (through TensorStore) reports a full disk as an exception whose text holds RESOURCE_EXHAUSTED or the
operating system's message rather than as an OSError, so faults are recognised by errno and by message.
"""
import errno
import os
import re
import sys
import tempfile
import threading
from typing import Optional

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
        exc = exc.__cause__ or exc.__context__
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
