"""The systemd integration (contrib/systemd, DESIGN §1, §7, §10; STYLE habit 12), checked with
the real systemd tools in their offline modes — no running systemd manager is needed (in CI,
PID 1 is not systemd).

The units are configured and installed through contrib/systemd/CMakeLists.txt exactly as the
project's ``cmake --install`` does it (a throw-away wrapper project that adds only that
directory, installed with DESTDIR into a temporary tree). For ``systemd-analyze verify`` the
installed service is copied with its ExecStart/ExecStartPre pointing at the daemon named by
``SIGNGATED_BIN`` (verify refuses a unit whose binary does not exist).

Environment: ``SIGNGATED_BIN`` (required: the built daemon, or any executable such as
/usr/bin/true), ``SIGNGATE_SOURCE_DIR`` (default: two levels above this file).
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("SIGNGATE_SOURCE_DIR")
                  or Path(__file__).resolve().parents[2]).resolve()
SYSTEMD_SRC = SOURCE_DIR / "contrib" / "systemd"
PREFIX = "/usr"                       # what a Debian package installs with
INSTALLED_DAEMON = PREFIX + "/sbin/signgated"
MAX_EXPOSURE = 2.0                    # systemd-analyze security's 0.0 (best) .. 10.0 scale
TOOL_TIMEOUT = 120                    # seconds; a hang is a failure, not a wait

# What signgated calls (DESIGN §8, §10): fsync for the audit file and policy store, inotify
# and epoll for the libuv loop and the inbox watcher, clone/clone3 and futex for the libuv
# thread pool, fcntl for F_SETLEASE, the unix-socket API with SO_PEERCRED, renames and
# symlinks for the atomic `current` swap, and fork/exec/wait for the post-promotion hook.
GATE_SYSCALLS = {
    "fsync", "fdatasync", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd2", "timerfd_create",
    "clone", "clone3", "futex", "fcntl", "openat", "fstat", "newfstatat", "mkdirat",
    "unlinkat", "renameat2", "symlinkat", "linkat", "fchmod", "socket", "bind", "listen",
    "accept4", "getsockopt", "setsockopt", "sendmsg", "recvmsg", "pipe2", "execve", "wait4",
    "kill", "getrandom",
}


# --------------------------------------------------------------------------------------------
# helpers

def _tool_env() -> dict:
    env = dict(os.environ)
    env.update(LC_ALL="C.UTF-8", SYSTEMD_PAGER="", SYSTEMD_COLORS="0", SYSTEMD_LOG_COLOR="0")
    return env


def run(argv, *, env=None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              encoding="utf-8", errors="replace", env=env or _tool_env(),
                              stdin=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("did not finish within %ds: %s" % (TOOL_TIMEOUT, argv))


def describe(proc: subprocess.CompletedProcess) -> str:
    return ("command: %s\nexit: %s\nstdout: %s\nstderr: %s"
            % (" ".join(proc.args), proc.returncode, proc.stdout[-6000:], proc.stderr[-4000:]))


def parse_unit(path: Path) -> dict:
    """{section: [(key, value), …]} in file order (unit files repeat keys)."""
    sections: dict = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, "%s: unexpected line %r" % (path, raw)
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, "[%s] %s= expected once, found %r" % (section, key, found)
    return found[0]


def words(unit: dict, section: str, key: str) -> set:
    return {w for v in values(unit, section, key) for w in v.split()}


def seconds(span: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        assert unit in units, "unexpected time unit in %r" % span
        total += float(number) * units[unit]
    return total


def is_true(value: str) -> bool:
    return value.lower() in {"1", "yes", "true", "on"}


@functools.lru_cache(maxsize=None)
def syscall_group(name: str) -> frozenset:
    """The system calls in a systemd syscall group (e.g. @system-service), fully expanded."""
    proc = run(["systemd-analyze", "syscall-filter", "--no-pager", name])
    assert proc.returncode == 0, describe(proc)
    calls = set()
    for line in proc.stdout.splitlines():
        item = line.strip()
        if not item or item.startswith("#") or item == name:
            continue
        calls |= syscall_group(item) if item.startswith("@") else {item}
    return frozenset(calls)


def expand_syscalls(items) -> set:
    return {c for item in items
            for c in (syscall_group(item) if item.startswith("@") else {item})}


# --------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def signgated_bin() -> str:
    path = os.environ.get("SIGNGATED_BIN")
    if not path:
        pytest.fail("SIGNGATED_BIN is not set: point it at the built daemon (or any executable, "
                    "e.g. SIGNGATED_BIN=/usr/bin/true python3 -m pytest "
                    "tests/e2e/test_systemd_units.py)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("SIGNGATED_BIN=%r is not an executable file" % path, pytrace=False)
    return os.path.abspath(path)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """DESTDIR of `cmake --install` of contrib/systemd with prefix /usr; returns DESTDIR/usr."""
    work = tmp_path_factory.mktemp("cmake")
    wrapper = work / "src"
    wrapper.mkdir()
    (wrapper / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\n"
        "project(signgate LANGUAGES NONE)\n"
        "include(GNUInstallDirs)\n"
        'add_subdirectory("%s" contrib/systemd)\n' % SYSTEMD_SRC.as_posix())
    build, destdir = work / "build", work / "dest"
    proc = run(["cmake", "-Wno-dev", "-S", wrapper, "-B", build,
                "-DCMAKE_INSTALL_PREFIX=" + PREFIX])
    assert proc.returncode == 0, describe(proc)
    env = _tool_env()
    env["DESTDIR"] = str(destdir)
    proc = run(["cmake", "--install", build], env=env)
    assert proc.returncode == 0, describe(proc)
    return destdir / PREFIX.lstrip("/")


@pytest.fixture(scope="module")
def unit_dir(installed, signgated_bin, tmp_path_factory) -> Path:
    """The installed units, with the service's daemon path replaced by SIGNGATED_BIN."""
    d = tmp_path_factory.mktemp("units")
    service = (installed / "lib/systemd/system/signgated.service").read_text()
    assert INSTALLED_DAEMON + " " in service, service
    (d / "signgated.service").write_text(
        service.replace(INSTALLED_DAEMON + " ", signgated_bin + " "))
    shutil.copy(installed / "lib/systemd/system/signgated.socket", d / "signgated.socket")
    return d


@pytest.fixture(scope="module")
def service(installed) -> dict:
    return parse_unit(installed / "lib/systemd/system/signgated.service")


@pytest.fixture(scope="module")
def socket_unit(installed) -> dict:
    return parse_unit(installed / "lib/systemd/system/signgated.socket")


@pytest.fixture(scope="module")
def sysroot(installed, tmp_path_factory) -> Path:
    """An empty root with the signgate accounts created by systemd-sysusers."""
    root = tmp_path_factory.mktemp("root")
    (root / "etc").mkdir()
    proc = run(["systemd-sysusers", "--root=%s" % root, installed / "lib/sysusers.d/signgate.conf"])
    assert proc.returncode == 0, describe(proc)
    return root


def db(root: Path, name: str) -> dict:
    """/etc/passwd or /etc/group of root as {name: fields}."""
    rows = {}
    for line in (root / "etc" / name).read_text().splitlines():
        if line and not line.startswith("#"):
            fields = line.split(":")
            rows[fields[0]] = fields
    return rows


# --------------------------------------------------------------------------------------------
# install layout

def test_install_puts_units_accounts_and_tmpfiles_under_prefix_lib(installed):
    for rel in ("lib/systemd/system/signgated.service", "lib/systemd/system/signgated.socket",
                "lib/sysusers.d/signgate.conf", "lib/tmpfiles.d/signgate.conf"):
        assert (installed / rel).is_file(), "not installed: %s/%s" % (PREFIX, rel)
    catalog = installed / "lib/systemd/catalog/signgate.catalog"
    assert catalog.is_file() == (SYSTEMD_SRC / "signgate.catalog").is_file(), \
        "the catalog is installed exactly when contrib/systemd/signgate.catalog exists"


def test_installed_service_runs_the_installed_daemon(installed, service):
    text = (installed / "lib/systemd/system/signgated.service").read_text()
    left = re.findall(r"@[A-Za-z_]+@", text)
    assert not left, "unsubstituted %s in the installed service" % left
    assert one(service, "Service", "ExecStart") == INSTALLED_DAEMON + " --foreground"
    assert one(service, "Service", "ExecStartPre") == INSTALLED_DAEMON + " --check-config"


# --------------------------------------------------------------------------------------------
# systemd-analyze

def test_verify_accepts_service_and_socket(unit_dir):
    env = _tool_env()
    env["SYSTEMD_UNIT_PATH"] = "%s:" % unit_dir    # trailing ':' keeps the built-in paths
    proc = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no",
                unit_dir / "signgated.service", unit_dir / "signgated.socket"], env=env)
    assert proc.returncode == 0, describe(proc)
    # verify only warns (exit 0) about unknown keys or unparsable values: none are allowed.
    ours = [l for l in (proc.stdout + proc.stderr).splitlines()
            if "signgated.service" in l or "signgated.socket" in l]
    assert not ours, "systemd-analyze verify complained:\n" + "\n".join(ours)


def test_security_exposure_is_at_most_2(unit_dir):
    proc = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                unit_dir / "signgated.service"])
    assert proc.returncode == 0, describe(proc)
    m = re.search(r"Overall exposure level for signgated\.service: (\d+(?:\.\d+)?)", proc.stdout)
    assert m, "no overall exposure in the output\n" + describe(proc)
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, \
        "exposure %.1f > %.1f\n%s" % (exposure, MAX_EXPOSURE, proc.stdout)


# --------------------------------------------------------------------------------------------
# the service keeps what the gate needs (hardening must not take these away)

def test_service_is_a_notify_daemon_with_watchdog_reload_and_drain(service):
    assert one(service, "Service", "Type") == "notify"
    assert one(service, "Service", "NotifyAccess") == "main"
    assert seconds(one(service, "Service", "WatchdogSec")) == 30
    assert one(service, "Service", "Restart") == "on-failure"
    assert one(service, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert seconds(one(service, "Service", "TimeoutStopSec")) >= 90


def test_service_runs_as_signgate_with_only_cap_lease(service):
    assert one(service, "Service", "User") == "signgate"
    assert one(service, "Service", "Group") == "signgate"
    assert words(service, "Service", "CapabilityBoundingSet") == {"CAP_LEASE"}
    assert words(service, "Service", "AmbientCapabilities") == {"CAP_LEASE"}
    assert is_true(one(service, "Service", "NoNewPrivileges"))
    # A user namespace would make CAP_LEASE useless and SO_PEERCRED uids meaningless.
    assert not any(is_true(v) for v in values(service, "Service", "PrivateUsers"))
    assert not values(service, "Service", "DynamicUser")


def test_service_owns_its_directories_with_the_design_modes(service):
    expect = {"StateDirectory": ("signgate", "0755"), "LogsDirectory": ("signgate", "0750"),
              "RuntimeDirectory": ("signgate", "0755")}
    for key, (name, mode) in expect.items():
        assert one(service, "Service", key) == name
        assert one(service, "Service", key + "Mode") == mode
    # signgated.socket's listening socket lives in /run/signgate: stopping the service must
    # not delete it.
    assert is_true(one(service, "Service", "RuntimeDirectoryPreserve"))
    assert "/var/spool/signgate" in words(service, "Service", "ReadWritePaths")
    assert one(service, "Service", "UMask") == "0027"


def test_service_may_exec_the_hook_and_talk_only_unix_sockets(service):
    # The post-promotion hook is an arbitrary command from the OS: nothing it may live in
    # (/usr, or / and the merged-/usr symlinks) may be mounted noexec.
    for path in words(service, "Service", "NoExecPaths"):
        p = "/" + path.lstrip("-+").strip("/")
        assert p not in {"/", "/usr", "/bin", "/sbin", "/lib", "/lib64"} \
            and not p.startswith("/usr/"), "NoExecPaths=%s stops the hook from running" % path
    assert words(service, "Service", "RestrictAddressFamilies") == {"AF_UNIX"}
    assert is_true(one(service, "Service", "PrivateNetwork"))
    assert one(service, "Service", "IPAddressDeny") == "any"


def test_syscall_filter_allows_what_the_gate_calls(service):
    filters = values(service, "Service", "SystemCallFilter")
    assert filters and not filters[0].startswith("~"), "expected an allow-list first: %r" % filters
    allowed: set = set()
    for value in filters:
        if value.startswith("~"):
            allowed -= expand_syscalls(value[1:].split())
        else:
            allowed |= expand_syscalls(value.split())
    missing = sorted(GATE_SYSCALLS - allowed)
    assert not missing, "SystemCallFilter= blocks system calls the gate needs: %s" % missing


# --------------------------------------------------------------------------------------------
# the socket unit

def test_socket_is_the_design_api_socket_for_deployers(socket_unit, service):
    assert one(socket_unit, "Socket", "ListenStream") == "/run/signgate/api.sock"
    assert one(socket_unit, "Socket", "SocketMode") == "0660"
    assert one(socket_unit, "Socket", "SocketUser") == "signgate"
    assert one(socket_unit, "Socket", "SocketGroup") == "signgate-deploy"
    assert one(socket_unit, "Socket", "Service") == "signgated.service"
    assert not is_true(one(socket_unit, "Socket", "Accept"))
    assert "sockets.target" in words(socket_unit, "Install", "WantedBy")
    # The socket's directory is the service's RuntimeDirectory.
    assert os.path.dirname(one(socket_unit, "Socket", "ListenStream")) == \
        "/run/" + one(service, "Service", "RuntimeDirectory")


# --------------------------------------------------------------------------------------------
# sysusers.d and tmpfiles.d

def test_sysusers_file_parses(installed, tmp_path):
    (tmp_path / "etc").mkdir()
    proc = run(["systemd-sysusers", "--dry-run", "--root=%s" % tmp_path,
                installed / "lib/sysusers.d/signgate.conf"])
    assert proc.returncode == 0, describe(proc)
    assert not (tmp_path / "etc/passwd").exists(), "--dry-run wrote /etc/passwd"


def test_sysusers_creates_system_user_and_deploy_group(sysroot):
    users, groups = db(sysroot, "passwd"), db(sysroot, "group")
    assert "signgate" in users, users
    uid, gid = int(users["signgate"][2]), int(users["signgate"][3])
    assert 0 < uid < 1000, "signgate must be a system user, got uid %d" % uid
    assert groups["signgate"][2] == str(gid), "signgate's primary group is signgate"
    assert users["signgate"][6].endswith("nologin"), users["signgate"]
    assert "signgate-deploy" in groups, groups
    assert 0 < int(groups["signgate-deploy"][2]) < 1000


def test_every_account_the_units_and_tmpfiles_name_is_created(sysroot, installed, service,
                                                              socket_unit):
    users, groups = db(sysroot, "passwd"), db(sysroot, "group")
    assert one(service, "Service", "User") in users
    assert one(service, "Service", "Group") in groups
    assert one(socket_unit, "Socket", "SocketUser") in users
    assert one(socket_unit, "Socket", "SocketGroup") in groups
    for line in (installed / "lib/tmpfiles.d/signgate.conf").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            assert fields[3] in users and fields[4] in groups, line


@pytest.fixture
def spool(sysroot, installed) -> Path:
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles --create sets owners, which needs root (CI runs as root)")
    shutil.rmtree(sysroot / "var", ignore_errors=True)
    proc = run(["systemd-tmpfiles", "--create", "--root=%s" % sysroot,
                installed / "lib/tmpfiles.d/signgate.conf"])
    assert proc.returncode == 0, describe(proc)
    return sysroot / "var/spool/signgate"


def check_spool(sysroot: Path, spool_dir: Path):
    users, groups = db(sysroot, "passwd"), db(sysroot, "group")
    uid = int(users["signgate"][2])
    gid, deploy_gid = int(groups["signgate"][2]), int(groups["signgate-deploy"][2])
    expect = {spool_dir: (0o755, uid, gid), spool_dir / "inbox": (0o1770, uid, deploy_gid),
              spool_dir / "rejected": (0o750, uid, gid)}
    for path, (mode, owner, group) in expect.items():
        st = os.lstat(path)
        assert stat.S_ISDIR(st.st_mode), "%s is not a directory" % path
        got = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        assert got == (mode, owner, group), "%s: mode/uid/gid %s, expected %s" % (
            path, (oct(got[0]), got[1], got[2]), (oct(mode), owner, group))


def test_tmpfiles_creates_spool_with_design_modes_and_owners(sysroot, spool):
    check_spool(sysroot, spool)


def test_tmpfiles_repairs_a_loosened_inbox(sysroot, spool, installed):
    os.chmod(spool / "inbox", 0o777)
    os.chown(spool / "rejected", 0, 0)
    proc = run(["systemd-tmpfiles", "--create", "--root=%s" % sysroot,
                installed / "lib/tmpfiles.d/signgate.conf"])
    assert proc.returncode == 0, describe(proc)
    check_spool(sysroot, spool)
