"""Safe file handling of a sweep's single writer: the output lock, atomic writes, a free-space
check before the final write, and the removal of temporaries left by killed writers.

    <target>.lock          held with flock(2) for the whole run; holds {pid, host, started} for
                           the message a second run prints. The kernel drops the flock when its
                           holder dies (kill -9 included), so taking over a stale lock is one
                           atomic flock call: of many processes racing for it exactly one wins.
    .<name>.tmp-<pid>      a file being written (renamed to <name> when complete); one whose pid
                           is dead is removed by the next run (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import shutil
import socket
import stat
from pathlib import Path

# the writing primitives and SweepError live one layer down (the learning and analysis layers
# use them too); kept importable from here
from ..base.errors import SweepError
from ..base.fs import atomic_write, disk_full, fsync_dir, make_dirs

__all__ = ["SweepError", "OutputLock", "atomic_write", "fsync_dir", "make_dirs", "pid_alive",
           "slurm_job_id", "slurm_job_running",
           "check_free_space", "remove_stale_temporaries", "disk_full", "FREE_SPACE_MARGIN"]

#: bytes kept free beyond a file's estimated size (HDF5 metadata, the file system's own needs)
FREE_SPACE_MARGIN = 16 * 2**20



def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


# ----------------------------------------------------------------------------- the lock

#: SLURM job states in which the job's processes may still run
_SLURM_LIVE = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING",
               "STAGE_OUT", "RESIZING"}


def slurm_job_id(env=None) -> str | None:
    """This process's SLURM job: '<array job>_<task>' in a job array, else SLURM_JOB_ID; None
    outside SLURM."""
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def slurm_job_running(job: str) -> bool | None:
    """Whether SLURM job `job` may still be running: True, False, or None when SLURM does not
    answer. `squeue -h -j JOB -o %T` decides (a job the controller no longer knows has ended);
    `sacct` is asked only when squeue itself fails."""
    import subprocess

    if not re.fullmatch(r"[0-9]+(?:_[0-9]+)?(?:\.[0-9]+)?", str(job)):
        return None
    for cmd in (["squeue", "-h", "-j", str(job), "-o", "%T"],
                ["sacct", "-n", "-X", "-P", "-j", str(job), "-o", "State"]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        states = {w.split()[0].rstrip("+") for w in r.stdout.splitlines() if w.strip()}
        if r.returncode == 0 and states:
            return bool(states & _SLURM_LIVE)
        if r.returncode == 0 and cmd[0] == "squeue":
            return False  # known to the controller, in no listed state: finished
        if cmd[0] == "squeue" and "invalid job id" in (r.stderr or "").lower():
            return False  # the controller answers and knows no such job: it has ended
    return None


class OutputLock:
    """Exclusive lock `<target>.lock`: flock(2) on the file, which records pid, host and, under
    SLURM, the job ({pid, host, started, slurm_job}; slurm_job is '<array job>_<task>' in a job
    array, else SLURM_JOB_ID).

    A live holder (this process included) makes `acquire` raise SweepError naming it (pid, host,
    SLURM job). A lock left by a dead process is taken over atomically (the kernel released its
    flock). A record naming another host is refused unless its SLURM job is this very job (a
    requeued job's earlier run) or no longer running (`squeue -h -j ID`, then `sacct`): such a
    lock is taken over, even when a network file system still shows its flock held. A record of
    another host without a SLURM job is refused: delete the file only if that run is dead. On a
    file system without flock (flock fails with ENOSYS, ENOLCK, EOPNOTSUPP...) the lock falls
    back to exclusive creation (O_EXCL) plus the pid / SLURM job check of the record.

    A file at the lock's path that is neither empty nor a lock record (a user's file) is refused
    and never truncated or removed."""

    def __init__(self, target):
        self.target = Path(target)
        self.path = self.target.with_name(self.target.name + ".lock")
        self.held = False
        self._fd = None

    def record(self) -> dict:
        """The {pid, host, started[, slurm_job]} record in the lock file ({} if missing or not a record)."""
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        return info if isinstance(info, dict) else {}

    def _refuse(self, info=None):
        info = self.record() if info is None else info
        who = (f"pid {info.get('pid')} on {info.get('host')}" if info.get("pid") is not None
               else "another process")
        if info.get("slurm_job"):
            who += f", SLURM job {info['slurm_job']}"
        raise SweepError(f"{self.target} is being written by another run ({who}); lock file "
                         f"{self.path} (delete it only if that run is dead)")

    @staticmethod
    def _stale_elsewhere(info: dict) -> bool:
        """A record whose holder is certainly dead although its flock may look held (another
        node, a network file system): its SLURM job is this very job (requeued, so the old
        incarnation is gone) or no longer running by squeue/sacct."""
        job = info.get("slurm_job")
        if not job:
            return False
        if job == slurm_job_id():
            return info.get("host") != socket.gethostname() or not pid_alive(
                int(info["pid"]) if str(info.get("pid", "")).isdigit() else -1)
        return slurm_job_running(str(job)) is False

    def _unlink_if(self, info: dict):
        """Remove the lock file if it still holds record `info` (a new inode is then locked)."""
        if self.record() == info:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _write_record(self, fd):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        rec = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        if slurm_job_id():
            rec["slurm_job"] = slurm_job_id()
        os.write(fd, json.dumps(rec).encode())
        with contextlib.suppress(OSError):
            os.fsync(fd)

    def _check_is_lock(self, fd):
        """Refuse (SweepError, nothing changed) a file at the lock's path that this or another
        memphase run did not create: only an empty file (a run killed between creating and
        writing it) or a lock record is ever truncated or removed."""
        try:
            data = os.pread(fd, 65536, 0)
        except OSError:
            data = b""
        if not data.strip():
            return
        try:
            info = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            info = None
        if not (isinstance(info, dict) and "pid" in info and "host" in info):
            os.close(fd)
            raise SweepError(f"{self.path} exists and is not a memphase lock file; refusing to "
                             f"overwrite or delete it: move it away or choose another --output")

    def _open(self):
        """(fd, created): the lock file opened read-write, created exclusively if missing."""
        while True:
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                               0o644), True
            except FileExistsError:
                pass
            try:  # O_NONBLOCK: a FIFO at this path must not block the open (refused below)
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                return fd, False
            except FileNotFoundError:
                continue  # removed by its releasing holder in between

    def acquire(self):
        import fcntl

        if self.held:
            raise SweepError(f"lock {self.path} is already held by this object")
        make_dirs(self.path.parent)
        for _ in range(50):
            fd, created = self._open()
            if not created:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise SweepError(f"{self.path} exists and is not a regular file; refusing "
                                     f"to use it as the lock: move it away or choose another "
                                     f"--output")
                self._check_is_lock(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                info = self.record()
                if info.get("host") != socket.gethostname() and self._stale_elsewhere(info):
                    self._unlink_if(info)  # flock of a dead node on a network file system
                    continue
                self._refuse(info)
            except OSError as e:  # ENOSYS, ENOLCK, EOPNOTSUPP...: no flock on this file system
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    self._refuse()
                if created:  # created exclusively: this run holds the lock without flock
                    self._write_record(fd)
                    os.close(fd)
                    self.held = True
                    return self
                os.close(fd)
                return self._acquire_without_flock()
            # a releasing holder unlinks the file: the inode locked must still be the one there
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = self.record()
            host = info.get("host")
            if host is not None and host != socket.gethostname() and not self._stale_elsewhere(info):
                os.close(fd)
                self._refuse(info)
            self._write_record(fd)
            self._fd, self.held = fd, True
            return self
        raise SweepError(f"could not take the lock {self.path}")

    def _acquire_without_flock(self):
        """Exclusive creation; a record of a dead pid on this host, or of an ended SLURM job, is
        stale and removed. An empty file cannot be told from one being written: refused."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self.record()
                if self._stale_elsewhere(info) or info.get("host") == socket.gethostname() and not pid_alive(
                        int(info.get("pid", -1)) if str(info.get("pid", "")).isdigit() else -1):
                    self._unlink_if(info)
                    continue
                self._refuse(info)
            self._write_record(fd)
            os.close(fd)
            self.held = True
            return self
        raise SweepError(f"could not take the lock {self.path}")

    def release(self):
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # while still holding the flock: see the inode check above
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self.held = None, False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ----------------------------------------------------------------------------- writing


def check_free_space(path, nbytes: int, what: str = "the results"):
    """Refuse (SweepError) to write about `nbytes` to `path` when its file system has less free
    space than that plus FREE_SPACE_MARGIN and 10% (HDF5 crashes on a full disk, upstream)."""
    path = Path(path)
    folder = next((p for p in [path.parent, *path.parents] if p.exists()), Path("."))
    free = shutil.disk_usage(folder).free
    need = int(nbytes) + int(nbytes) // 10 + FREE_SPACE_MARGIN
    if free < need:
        raise SweepError(f"not enough free disk space to write {what} {path}: about "
                         f"{_fmt_bytes(need)} needed, {_fmt_bytes(free)} free on {folder}; free "
                         f"some space and rerun the same command (finished cells are kept)")


_TMP = re.compile(r"\.(?:tmp|fig)-(\d+)$")


def remove_stale_temporaries(target, *folders) -> list[Path]:
    """Remove `.<target name>.tmp-<pid>` / `.fig-<pid>` beside `target` and `.*.tmp-<pid>` in
    `folders` (the journal) whose writer `pid` is dead; return what was removed. Call it while
    holding the target's OutputLock (no other writer of these names can then exist)."""
    target = Path(target)
    cands = list(target.parent.glob(f".{glob_escape(target.name)}.*-*"))
    for f in folders:
        if Path(f).is_dir():
            cands += list(Path(f).glob(".*.tmp-*"))
    removed = []
    for p in cands:
        m = _TMP.search(p.name)
        if not m or int(m[1]) == os.getpid() or pid_alive(int(m[1])):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)
