"""Run folders: their default names, writing into them with errors a user can act on, and the
kernel lock that keeps a second training out of a folder in use."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: RunLock falls back to an exclusively created file
    fcntl = None  # type: ignore[assignment]


from specc.errors import Diagnostic, RunError, UsageError


@contextmanager
def writing(path: Path):
    """OSError while writing run files (a full disk, a read-only folder) -> RunError, not a traceback."""
    try:
        yield
    except OSError as e:
        raise RunError([Diagnostic(f"cannot write {path}: {e.strerror or e}", None, "write-failed",
                                   hint="free some space or fix the folder's permissions; "
                                        "the last checkpoint, if any, is unchanged")]) from None


def new_run_folder(spec: Path, root: Path = Path("runs")) -> Path:
    """runs/<spec name>-<date>-<time>, numbered if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{spec.stem}-{stamp}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


class RunLock:
    """An exclusive kernel lock (flock) on a run folder's `.lock`, held open for the whole run.

    The kernel drops the lock when its process ends, however it ends (killed, crashed, a zombie not
    yet reaped), so a lock is never stale and a reused pid blocks nothing; taking it is atomic, so of
    two trainings started at once exactly one wins. The pid written inside is only for the message.
    Without fcntl (Windows, not a target) the file's existence is the lock: a stale one is deleted by hand.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None
        self._created = False  # this lock made the folder: an empty one is removed again on release

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        # A round is retried only when the owner releasing the lock removed the file (or the folder)
        # between our open and our lock: the file we locked is then not the folder's .lock any more.
        for _ in range(100):
            fd = self._open()
            if fd is None:
                continue
            if not _try_lock(fd):
                os.close(fd)
                raise self._in_use()
            if _is_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._fd = fd
                return
            os.close(fd)
        raise UsageError([Diagnostic(f"could not take the lock of run folder {self.folder}", None, "folder-in-use")])

    def _open(self) -> int | None:
        """The lock file, opened (created if missing); None if it vanished under us."""
        try:
            self.folder.mkdir(parents=True)
            self._created = True
        except FileExistsError:
            pass
        except OSError as e:
            raise self._unusable(e) from None
        flags = os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL)
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            return None
        except FileExistsError:  # no fcntl: the file is the lock
            raise self._in_use() from None
        except OSError as e:
            raise self._unusable(e) from None

    def _in_use(self) -> UsageError:
        owner = _pid_in(self.path)
        by = f" (process {owner})" if owner is not None else ""
        hint = "wait for it to finish, stop it (Ctrl-C), or train into another --out folder"
        if not fcntl:
            hint += f"; if no training is running, delete {self.path}"
        return UsageError([Diagnostic(f"run folder {self.folder} is in use by a training still running{by}",
                                      None, "folder-in-use", hint=hint)])

    def _unusable(self, e: OSError) -> UsageError:
        return UsageError([Diagnostic(f"cannot use run folder {self.folder}: {e.strerror or e}", None,
                                      "folder-unusable", hint="choose another --out folder, or fix its permissions")])

    def release(self) -> None:
        """Remove the lock file, then unlock (in that order: whoever locks the removed file sees it
        is not the folder's .lock and tries again); an empty folder this lock made goes too."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.folder.rmdir()  # only if empty: a run that never started leaves nothing behind
            except OSError:
                pass


def _try_lock(fd: int) -> bool:
    if not fcntl:
        return True  # created with O_EXCL: ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_file(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        here, opened = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return True
