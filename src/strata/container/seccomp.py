"""Docker's default seccomp profile and its conversion to the OCI runtime spec's ``linux.seccomp``.

The profile is kept in Docker's own profile format (``defaultAction``, ``archMap``, ``syscalls``
with ``includes``/``excludes`` on capabilities and architectures), so ``--security-opt
seccomp=PROFILE.json`` files written for Docker load through the same conversion. The default is an
allowlist: every syscall not listed fails with EPERM; namespace-creating ``clone`` flags, ``unshare``,
``mount``, ``keyctl``, ``add_key``, ``bpf``, ``ptrace`` of other processes on old kernels, module
loading, ``reboot`` and the clock setters are refused unless the container holds the capability.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from strata.errors import StrataError, os_error_text

TYPE_CHECKING = False  # not typing's: a build step's container loads no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_PROFILE", "load_profile", "normalize_security_opts", "oci_seccomp", "security_settings"]



def _words(text: str) -> list[str]:
    return text.split()


# Syscalls every container may make (Docker's default allowlist).
_ALLOWED = _words("""
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4
waitid waitpid write writev
""")

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
_CLONE_NS_FLAGS = 0x7E020000

# Extra syscalls a capability unlocks (Docker adds them when the container holds it).
_BY_CAP: dict[str, list[str]] = {
    "CAP_SYS_ADMIN": _words("""bpf clone fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
        mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl quotactl_fd
        setdomainname sethostname setns syslog umount umount2 unshare"""),
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                       "ptrace"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
}


def _default_profile() -> dict[str, Any]:
    allow = "SCMP_ACT_ALLOW"
    syscalls: list[dict[str, Any]] = [{"names": list(_ALLOWED), "action": allow}]
    # personality: only the harmless personas (Linux, 32-bit, UNAME26 and the query)
    for persona in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF):
        syscalls.append({"names": ["personality"], "action": allow,
                         "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]})
    syscalls.append({"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": allow,
                     "includes": {"minKernel": "4.8"}})
    syscalls.append({"names": ["arch_prctl", "modify_ldt"], "action": allow,
                     "includes": {"arches": ["amd64", "x32", "x86"]}})
    syscalls.append({"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                               "cacheflush", "set_tls"], "action": allow,
                     "includes": {"arches": ["arm", "arm64"]}})
    syscalls.append({"names": ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
                     "action": allow, "includes": {"arches": ["s390", "s390x"]}})
    for cap, names in _BY_CAP.items():
        syscalls.append({"names": names, "action": allow, "includes": {"caps": [cap]}})
    # without CAP_SYS_ADMIN: clone only without namespace flags; clone3 reports ENOSYS so libcs fall back
    syscalls.append({"names": ["clone"], "action": allow,
                     "args": [{"index": 0, "value": _CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}})
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    syscalls.append({"names": ["clone3"], "action": allow, "includes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
            {"architecture": "SCMP_ARCH_PPC64LE", "subArchitectures": []},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
        ],
        "syscalls": syscalls,
    }


DEFAULT_PROFILE: dict[str, Any] = _default_profile()

# Go's GOARCH for this machine, and the seccomp architecture it runs natively.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390x", "ppc64le": "ppc64le",
           "riscv64": "riscv64", "i686": "386"}
_NATIVE = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM",
           "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
           "386": "SCMP_ARCH_X86"}


def _kernel_at_least(wanted: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        nums = []
        for piece in text.split("-")[0].split(".")[:3]:
            digits = "".join(ch for ch in piece if ch.isdigit())
            nums.append(int(digits or 0))
        return tuple(nums)

    return parts(os.uname().release) >= parts(wanted)


def _applies(rule: dict[str, Any], caps: set[str], goarch: str) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("minKernel") and not _kernel_at_least(str(inc["minKernel"])):
        return False
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    return not (exc.get("caps") and set(exc["caps"]) & caps)


def _architectures(profile: dict[str, Any], goarch: str) -> list[str]:
    if profile.get("architectures"):
        return [str(a) for a in profile["architectures"]]
    native = _NATIVE.get(goarch)
    if native is None:
        return []
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            return [native, *[str(s) for s in entry.get("subArchitectures") or []]]
    return [native]


def oci_seccomp(profile: dict[str, Any], caps: list[str], machine: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a Docker-format ``profile`` and the container's capabilities."""
    machine = machine or os.uname().machine  # platform.machine(), without importing platform
    goarch = _GOARCH.get(machine, machine)
    capset = set(caps)
    rules: list[dict[str, Any]] = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, capset, goarch):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        out: dict[str, Any] = {"names": names, "action": rule.get("action", "SCMP_ACT_ALLOW")}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = int(rule["errnoRet"])
        if rule.get("args"):
            out["args"] = [
                {"index": int(a["index"]), "value": int(a.get("value", 0)),
                 **({"valueTwo": int(a["valueTwo"])} if a.get("valueTwo") else {}), "op": str(a["op"])}
                for a in rule["args"]
            ]
        rules.append(out)
    seccomp: dict[str, Any] = {
        "defaultAction": profile.get("defaultAction", "SCMP_ACT_ERRNO"),
        "architectures": _architectures(profile, goarch),
        "syscalls": rules,
    }
    if profile.get("defaultErrnoRet") is not None:
        seccomp["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    return seccomp


def normalize_security_opts(opts: list[str]) -> list[str]:
    """Docker's CLI check of ``--security-opt`` values; a seccomp profile file is read now and kept
    inline as ``seccomp=<compact JSON>`` (the container no longer depends on the file)."""
    out = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
            if not sep:
                raise StrataError(f'Invalid --security-opt: "{opt}"', exit_code=125)
        if key == "seccomp" and value != "unconfined":
            profile = load_profile(value)
            value = json.dumps(profile, separators=(",", ":"))
        elif key not in ("seccomp", "no-new-privileges", "apparmor", "label"):
            raise StrataError(f'invalid --security-opt 1: "{opt}"', exit_code=125)
        out.append(f"{key}={value}" if sep else key)
    return out


def security_settings(opts: list[str]) -> tuple[dict[str, Any] | None, bool]:
    """(seccomp profile or None for unconfined, no_new_privileges) from normalized security options."""
    profile: dict[str, Any] | None = DEFAULT_PROFILE
    nnp = False
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "seccomp":
            profile = None if value == "unconfined" else json.loads(value)
        elif key == "no-new-privileges":
            nnp = value.lower() in ("", "true", "1")
    return profile, nnp


def load_profile(value: str) -> dict[str, Any] | None:
    """``--security-opt seccomp=VALUE``: ``unconfined`` (None), ``builtin``/empty or a profile file."""
    if value == "unconfined":
        return None
    if value in ("", "builtin"):
        return DEFAULT_PROFILE
    try:
        data = json.loads(Path(value).read_text())
    except OSError as e:
        raise StrataError(
            f"opening seccomp profile ({value}) failed: open {value}: {os_error_text(e)}", exit_code=125
        ) from None
    except ValueError as e:
        raise StrataError(f"Decoding seccomp profile failed: {e}", exit_code=125) from None
    if not isinstance(data, dict) or "defaultAction" not in data:
        raise StrataError("Decoding seccomp profile failed: no defaultAction", exit_code=125)
    return data
