#!/usr/bin/python3
"""signgate's benchmark harness: the hardware limit, the stock pipeline and signgate, side by side.

Run it through bench/run.sh (see bench/README.md):

    bench/run.sh [--quick] [--out FILE] [--build DIR] [--runs N] [--workdir DIR] [--keep]
                 [--install-tools | --no-install-tools]

It builds nothing: it drives the signgate and signgated binaries of --build (default build/),
stock tools (openssl, unzip, mv, gpgv, minisign, signify-openbsd) and Python's zlib (the C zlib),
on packages it generates and signs with the real CLI, and writes a Markdown report (default
bench/RESULTS.md) with the machine, the versions, the exact commands, every figure as the median
and spread over its runs, and the targets table. Nothing here asserts a timing: the test suite
runs `--quick` only to check that the report is complete.

Exit status: 0 when every measurement was taken and every package was promoted; 1 when something
failed (the report is still written and its "Problems seen" section says what); 2 on bad usage.
"""

import argparse
import ctypes
import datetime
import http.client
import json
import math
import os
import platform
import random
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
KIB, MIB = 1024, 1024 * 1024
RSS_LIMIT_KIB = 32 * 1024
INFLATED_LIMIT = 262_144_000  # DESIGN §6: Lambda's 250 MiB, the gate's default inflated-bytes limit
CSC = "csc-0123456789abcdef0"
PROFILE = "Bench"
EXTRA_TOOLS = {"gpgv": "gpgv", "minisign": "minisign", "signify-openbsd": "signify-openbsd", "/usr/bin/time": "time"}  # command → package

# The packages. kind "random": incompressible bytes in a few files (a handler + 3 data files);
# kind "text": generated source-and-log-like text across many files. Every entry is deflated
# (as zip(1) and every packager does; zlib stores incompressible data in stored deflate blocks).
FULL_PACKAGES = [
    {"label": "10 KiB", "kind": "random", "bytes": 10 * KIB, "runs": 15},
    {"label": "1 MiB", "kind": "random", "bytes": 1 * MIB, "runs": 15},
    {"label": "50 MiB", "kind": "random", "bytes": 50 * MIB, "runs": 7, "role": "large"},
    {"label": "250 MiB inflated", "kind": "text", "bytes": INFLATED_LIMIT, "files": 3000, "runs": 5, "role": "text"},
]
QUICK_PACKAGES = [
    {"label": "10 KiB", "kind": "random", "bytes": 10 * KIB, "runs": 3},
    {"label": "1 MiB", "kind": "random", "bytes": 1 * MIB, "runs": 3, "role": "large"},
    {"label": "4 MiB inflated", "kind": "text", "bytes": 4 * MIB, "files": 60, "runs": 3, "role": "text"},
]
FULL = {"speed_runs": 3, "speed_seconds": 1, "burst": 1000, "burst_functions": 50, "burst_runs": 3,
        "api_clients": 8, "health_idle_samples": 200}
QUICK = {"speed_runs": 1, "speed_seconds": 1, "burst": 60, "burst_functions": 10, "burst_runs": 1,
         "api_clients": 4, "health_idle_samples": 30}


class Failure(Exception):
    """A measurement that could not be taken; recorded under "Problems seen"."""


# ---- small helpers ----------------------------------------------------------------------------

def summarize(values):
    v = sorted(values)
    if not v:
        raise Failure("no samples")
    out = {"n": len(v), "median": statistics.median(v), "min": v[0], "max": v[-1]}
    if len(v) >= 2:
        q = statistics.quantiles(v, n=100, method="inclusive")
        out.update(p10=q[9], p50=q[49], p90=q[89], p99=q[98])
    else:
        out.update(p10=v[0], p50=v[0], p90=v[0], p99=v[0])
    return out


def fmt(x, digits=3):
    """A number with `digits` significant digits, no exponent for the ranges seen here."""
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(x))))
    d = max(0, digits - 1 - mag)
    return "{:,.{}f}".format(x, d)


def human_bytes(n):
    if n >= MIB:
        return "%s MiB" % fmt(n / MIB, 4)
    if n >= KIB:
        return "%s KiB" % fmt(n / KIB, 4)
    return "%d B" % n


def first_line(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        s = (p.stdout or p.stderr).strip().splitlines()
        return s[0].strip() if s else "(no output)"
    except (OSError, subprocess.SubprocessError) as e:
        return "not available (%s)" % e.__class__.__name__


def dpkg_version(pkg):
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True, timeout=30)
        return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def read_proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0])  # kB
    except OSError:
        pass
    return out


def timed_run(argv, *, stdout=subprocess.DEVNULL, stderr=None, env=None, cwd=None, timeout=900):
    """Runs argv; returns (seconds, exit code, peak RSS KiB from wait4, stderr text)."""
    errf = tempfile.TemporaryFile() if stderr is None else stderr
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=stdout, stderr=errf, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    killer = threading.Timer(timeout, p.kill)  # a hang ends the run instead of the harness
    killer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        killer.cancel()
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = ""
    if stderr is None:
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        errf.close()
    return dt, p.returncode, ru.ru_maxrss, err


def sh(argv, *, env=None, cwd=None, input=None, timeout=900):
    p = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, input=input, timeout=timeout)
    if p.returncode != 0:
        raise Failure("%s exited %d: %s" % (shlex.join(argv), p.returncode,
                                            p.stderr.decode(errors="replace").strip()[:500]))
    return p.stdout.decode(errors="replace")


class Inotify:
    """Wakes the harness when a directory changes, instead of busy-polling (which would take CPU
    from the gate on a 2-core machine)."""
    IN_MODIFY, IN_MOVED_FROM, IN_CREATE, IN_DELETE = 0x2, 0x40, 0x100, 0x200

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")

    def watch(self, path):
        mask = self.IN_MODIFY | self.IN_MOVED_FROM | self.IN_CREATE | self.IN_DELETE
        if self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch %s" % path)

    def wait(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def close(self):
        os.close(self.fd)


class Audit:
    """Reads decision lines appended to the gate's audit file, incrementally."""

    def __init__(self, path):
        self.path, self.offset, self.partial, self.records = path, 0, b"", []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.records)
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            self.records.append(json.loads(line))
        return len(self.records)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def http_unix(path, method, url, body=None, timeout=600):
    c = UnixHTTP(path, timeout)
    try:
        t0 = time.perf_counter()
        c.request(method, url, body=body)
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t0
    finally:
        c.close()


# ---- the harness ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.cfg = dict(QUICK if self.quick else FULL)
        self.packages = [dict(p) for p in (QUICK_PACKAGES if self.quick else FULL_PACKAGES)]
        if args.runs:
            for p in self.packages:
                p["runs"] = args.runs
            self.cfg["speed_runs"] = args.runs
        if args.burst:
            self.cfg["burst"] = args.burst
        self.build = os.path.abspath(args.build)
        self.cli = os.path.join(self.build, "cli", "signgate")
        self.daemon = os.path.join(self.build, "daemon", "signgated")
        self.nproc = os.cpu_count() or 1
        self.problems = []      # what went wrong (errors, crashes, rejections, outliers)
        self.notes = []         # what the harness did that a reader should know (installs, skips)
        self.commands = {}      # the exact commands, first seen per kind
        self.results = {}
        self.procs = []         # daemons this harness started (ended by pid in finally)
        self.gpg_home = None
        self.tools = {}
        self.gnu_time = None

    # -- bookkeeping --

    def problem(self, msg):
        print("bench: problem: " + msg, file=sys.stderr)
        self.problems.append(msg)

    def note(self, msg):
        print("bench: " + msg, file=sys.stderr)
        self.notes.append(msg)

    def log(self, msg):
        print("bench: [%6.1fs] %s" % (time.monotonic() - self.t_start, msg), file=sys.stderr, flush=True)

    def show(self, argv_or_text):
        """A command as a reader can paste it, with $W for the work dir and $BUILD for the build."""
        def sub(t):
            return t.replace(self.w, "$W").replace(self.build, "$BUILD")
        if isinstance(argv_or_text, (list, tuple)):
            return " ".join(a if re.fullmatch(r"[\w@%+=:,./$…-]+", a) else shlex.quote(a)
                            for a in (sub(str(x)) for x in argv_or_text))
        return sub(argv_or_text)

    def record_cmd(self, kind, argv_or_text):
        self.commands.setdefault(kind, self.show(argv_or_text))

    def optional(self, name, fn):
        """Sets up an optional stock tool; a failure skips that tool (a note, not a problem)."""
        try:
            fn()
        except (Failure, OSError, subprocess.SubprocessError) as e:
            self.note("%s failed, that tool is skipped: %s" % (name, str(e).replace("\n", " ")[:400]))

    def measure(self, name, fn):
        """Runs one measurement; a failure is recorded and the harness goes on."""
        try:
            return fn()
        except Failure as e:
            self.problem("%s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 - any bug or I/O error is reported, not fatal
            self.problem("%s: %s: %s" % (name, e.__class__.__name__, e))
            traceback.print_exc()
        return None

    # -- set-up --

    def machine(self):
        info = {}
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        info["CPU"] = cpu
        info["cores"] = "%d online (nproc), %d usable by this process" % (self.nproc, len(os.sched_getaffinity(0)))
        with open("/proc/meminfo") as f:
            mem = {l.split(":")[0]: l.split(":")[1].strip() for l in f}
        info["RAM"] = "%s MiB total, %s MiB available at start" % (
            fmt(int(mem["MemTotal"].split()[0]) / 1024, 4), fmt(int(mem["MemAvailable"].split()[0]) / 1024, 4))
        info["kernel"] = platform.release()
        fs = first_line(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "--target", self.w])
        info["work dir filesystem"] = "%s (`%s`)" % (fs, self.w)
        # Whether the filesystem journals matters: ext4 without a journal scans past recently
        # deleted inodes on every file creation (find_inode_bit → recently_deleted), which a gate
        # that creates and removes files per decision pays for in kernel time.
        src = first_line(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", self.w]).split()
        if len(src) == 2 and src[0].startswith("ext") and shutil.which("dumpe2fs"):
            feats = first_line(["sh", "-c", "dumpe2fs -h %s 2>/dev/null | grep -i '^Filesystem features'" % shlex.quote(src[1])])
            info["work dir filesystem"] += "; %s" % ("has a journal" if "has_journal" in feats else
                                                       "**no journal**" if feats.lower().startswith("filesystem features") else "journal unknown")
        info["load average at start"] = " ".join(open("/proc/loadavg").read().split()[:3])
        info["OS"] = first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""])
        return info

    def versions(self):
        v = {}
        src = None
        try:
            with open(os.path.join(self.build, "CMakeCache.txt")) as f:
                m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", f.read(), re.M)
                src = m.group(1) if m else None
        except OSError:
            pass
        v["build directory ($BUILD)"] = self.build
        if src:
            rev = first_line(["git", "-C", src, "describe", "--always", "--dirty", "--abbrev=12"])
            v["source the build was made from"] = "%s at %s" % (self.show(src), rev)
        v["signgate --version"] = first_line([self.cli, "--version"])
        v["signgated --version"] = first_line([self.daemon, "--version"])
        v["openssl version"] = first_line(["openssl", "version"])
        v["zlib (Python's zlib module, the C library)"] = "%s (runtime %s; Debian zlib1g %s)" % (
            zlib.ZLIB_VERSION, zlib.ZLIB_RUNTIME_VERSION, dpkg_version("zlib1g") or "?")
        v["unzip -v"] = first_line(["unzip", "-v"])
        v["gpg --version"] = first_line(["gpg", "--version"]) if shutil.which("gpg") else "not installed"
        v["gpgv --version"] = first_line(["gpgv", "--version"]) if shutil.which("gpgv") else "not installed"
        v["minisign -v"] = first_line(["minisign", "-v"]) if shutil.which("minisign") else "not installed"
        v["signify-openbsd"] = ("Debian signify-openbsd %s" % dpkg_version("signify-openbsd")
                                if shutil.which("signify-openbsd") else "not installed")
        for pkg in ("libssl3", "libzip4", "libuv1", "libmicrohttpd12", "libcjson1"):
            ver = dpkg_version(pkg)
            if ver:
                v["Debian %s (linked by signgate)" % pkg] = ver
        v["python3"] = platform.python_version()
        return v

    def ensure_tools(self):
        missing = [c for c in EXTRA_TOOLS if not shutil.which(c)]
        if not missing:
            return
        pkgs = sorted({EXTRA_TOOLS[c] for c in missing})
        if not self.args.install_tools:
            self.note("not installed, skipped: %s (--install-tools as root installs the Debian packages %s)"
                      % (", ".join(missing), " ".join(pkgs)))
            return
        if os.geteuid() != 0:
            self.note("not installed, skipped (not root, so not installed): %s" % ", ".join(missing))
            return
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + pkgs
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if p.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        still = [c for c in missing if not shutil.which(c)]
        if p.returncode == 0 and not still:
            self.note("installed with `%s` (they were missing)" % shlex.join(cmd))
        else:
            self.note("could not install %s (apt-get exited %d), skipped: %s"
                      % (" ".join(pkgs), p.returncode, p.stderr.strip().splitlines()[-1:] or ""))

    def keys(self):
        k = os.path.join(self.w, "keys")
        os.makedirs(k)
        self.tools = {}
        self.signer_env = dict(os.environ, SIGNGATE_SIGNER_HOME=os.path.join(self.w, "signer"),
                               SIGNGATE_SOCKET=os.path.join(self.w, "no-gate.sock"), LC_ALL="C.UTF-8")
        sh([self.cli, "signer", "put-signing-profile", "--profile-name", PROFILE,
            "--platform-id", "AWSLambda-SHA384-ECDSA"], env=self.signer_env)
        self.profile_doc_text = sh([self.cli, "signer", "get-signing-profile", "--profile-name", PROFILE],
                                   env=self.signer_env)
        self.profile_version = json.loads(self.profile_doc_text)["profileVersion"]
        self.profile_doc = os.path.join(k, "profile.json")
        with open(self.profile_doc, "w") as f:
            f.write(self.profile_doc_text)
        # The stock pipeline's detached signature: a P-384 key made and used with openssl alone.
        self.ossl_key, self.ossl_pub = os.path.join(k, "key.pem"), os.path.join(k, "pub.pem")
        sh(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", self.ossl_key])
        sh(["openssl", "pkey", "-in", self.ossl_key, "-pubout", "-out", self.ossl_pub])
        self.record_cmd("openssl key", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out $W/keys/key.pem")
        if shutil.which("gpgv") and shutil.which("gpg"):
            def gpg_setup():
                self.gpg_home = os.path.join(k, "gnupg")
                os.makedirs(self.gpg_home, mode=0o700)
                g = ["gpg", "--homedir", self.gpg_home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
                sh(g + ["--quick-gen-key", "signgate bench <bench@localhost>", "nistp384", "sign", "never"])
                pub = os.path.join(k, "gpg-pub.gpg")
                with open(pub, "wb") as f:
                    f.write(subprocess.run(["gpg", "--homedir", self.gpg_home, "--export"], capture_output=True,
                                           check=True).stdout)
                self.tools["gpgv"] = {
                    "sign": lambda pkg: g + ["--yes", "--digest-algo", "SHA384", "--detach-sign", "-o", pkg + ".gpgsig", pkg],
                    "verify": lambda pkg: ["gpgv", "--homedir", self.gpg_home, "--keyring", pub, pkg + ".gpgsig", pkg],
                    "what": "OpenPGP ECDSA nistp384, SHA-384, detached",
                }
            self.optional("gpg key set-up", gpg_setup)
        if shutil.which("minisign"):
            def minisign_setup():
                pub, sec = os.path.join(k, "minisign.pub"), os.path.join(k, "minisign.key")
                sh(["minisign", "-G", "-W", "-p", pub, "-s", sec])
                self.tools["minisign"] = {
                    "sign": lambda pkg: ["minisign", "-S", "-s", sec, "-m", pkg, "-x", pkg + ".minisig"],
                    "verify": lambda pkg: ["minisign", "-V", "-q", "-p", pub, "-m", pkg, "-x", pkg + ".minisig"],
                    "what": "Ed25519 over BLAKE2b-512 of the file (prehashed), detached",
                }
            self.optional("minisign key set-up", minisign_setup)
        if shutil.which("signify-openbsd"):
            def signify_setup():
                pub, sec = os.path.join(k, "signify.pub"), os.path.join(k, "signify.sec")
                sh(["signify-openbsd", "-G", "-n", "-p", pub, "-s", sec])
                self.tools["signify"] = {
                    "sign": lambda pkg: ["signify-openbsd", "-S", "-s", sec, "-m", pkg, "-x", pkg + ".signify"],
                    "verify": lambda pkg: ["signify-openbsd", "-V", "-q", "-p", pub, "-m", pkg, "-x", pkg + ".signify"],
                    "what": "Ed25519 over the whole file (read into memory), detached",
                }
            self.optional("signify key set-up", signify_setup)

    # -- packages --

    @staticmethod
    def text_pool(rng, nlines=3000):
        syl = ["ka", "lo", "mi", "ne", "ra", "tu", "sh", "ex", "in", "or", "al", "et", "po", "qu", "ve", "zy",
               "id", "an", "ca", "de"]
        words = sorted({"".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(4000)})
        kw = ["def", "return", "if", "else", "for", "in", "import", "from", "class", "self", "None", "const",
              "let", "function", "await", "async"]

        def ident():
            return "_".join(rng.choice(words) for _ in range(rng.randint(1, 3)))

        def phrase(a, b):
            return " ".join(rng.choice(words) for _ in range(rng.randint(a, b)))
        lines = []
        for _ in range(nlines):
            k, ind = rng.random(), "    " * rng.randint(0, 3)
            if k < 0.25:
                line = "%s%s = %s(%s, %d)" % (ind, ident(), ident(), ident(), rng.randint(0, 9999))
            elif k < 0.4:
                line = "%s%s %s(%s):" % (ind, rng.choice(kw), ident(), ", ".join(ident() for _ in range(rng.randint(0, 3))))
            elif k < 0.55:
                line = "%s# %s" % (ind, phrase(3, 12))
            elif k < 0.7:
                line = "2026-%02d-%02dT%02d:%02d:%02dZ INFO %s %s id=%08x" % (
                    rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                    ident(), phrase(2, 8), rng.getrandbits(32))
            elif k < 0.85:
                line = '%s"%s": "%s",' % (ind, ident(), phrase(1, 6))
            else:
                line = "%sreturn %s.%s(%d)" % (ind, ident(), ident(), rng.randint(0, 255))
            lines.append(line)
        return lines

    def make_zip(self, spec, path, rng):
        files = []
        handler = ("def handler(event, context):\n    return {\"statusCode\": 200, \"body\": %r}\n" % spec["label"]).encode()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            def add(name, data):
                zi = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.external_attr = 0o100644 << 16
                z.writestr(zi, data)
                files.append(len(data))
            if spec["kind"] == "random":
                add("lambda_function.py", handler)
                left = spec["bytes"] - len(handler)
                for i in range(3):
                    n = left // (3 - i)
                    add("data/part%d.bin" % i, rng.randbytes(n))
                    left -= n
            else:
                pool = self.text_pool(rng)
                avg = sum(map(len, pool)) / len(pool) + 1
                nfiles = spec["files"]
                weights = [rng.lognormvariate(0, 1.2) for _ in range(nfiles - 1)]
                budget = spec["bytes"] - len(handler)
                sizes = [max(1, int(budget * w / sum(weights))) for w in weights]
                sizes[-1] += budget - sum(sizes)
                add("lambda_function.py", handler)
                exts = [".py", ".js", ".json", ".log", ".txt", ".md"]
                for i, size in enumerate(sizes):
                    name = "src/pkg%02d/mod%03d/file%05d%s" % (i % 37, i % 211, i, exts[i % len(exts)])
                    data = "\n".join(rng.choices(pool, k=int(size / avg) + 16)).encode()
                    while len(data) < size:
                        data += b"\n" + "\n".join(rng.choices(pool, k=64)).encode()
                    add(name, data[:size])
        return len(files), sum(files)

    def sign(self, src, dest_dir):
        out = json.loads(sh([self.cli, "signer", "start-signing-job", "--source", src, "--destination", dest_dir,
                             "--profile-name", PROFILE], env=self.signer_env))
        return os.path.join(dest_dir, out["jobId"] + ".zip")

    def prepare_packages(self):
        pdir = os.path.join(self.w, "pkgs")
        os.makedirs(pdir)
        rng = random.Random(20260101)
        for i, spec in enumerate(self.packages):
            t0 = time.monotonic()
            src = os.path.join(pdir, "unsigned-%d.zip" % i)
            spec["files"], spec["inflated"] = self.make_zip(spec, src, rng)
            signed = self.sign(src, pdir)
            spec["path"] = os.path.join(pdir, "pkg-%d.zip" % i)
            os.rename(signed, spec["path"])
            os.unlink(src)
            spec["size"] = os.path.getsize(spec["path"])
            self.record_cmd("sign (gate)", [self.cli, "signer", "start-signing-job", "--source", "$W/pkgs/unsigned.zip",
                                            "--destination", "$W/pkgs", "--profile-name", PROFILE])
            # The stock pipeline's detached signature over the very same bytes.
            sh(["openssl", "dgst", "-sha384", "-sign", self.ossl_key, "-out", spec["path"] + ".sig", spec["path"]])
            self.record_cmd("sign (openssl)", ["openssl", "dgst", "-sha384", "-sign", self.ossl_key, "-out", "PKG.sig", "PKG"])
            for name, tool in list(self.tools.items()):
                argv = tool["sign"](spec["path"])
                self.record_cmd("sign (%s)" % name, [a.replace(spec["path"], "PKG") for a in argv])
                try:
                    sh(argv)
                except Failure as e:
                    self.note("%s could not sign, skipped: %s" % (name, e))
                    del self.tools[name]
            spec["deflate_streams"] = self.deflate_streams(spec["path"])
            self.log("package %s: %d files, %s inflated, %s signed zip (%.1fs to make)"
                     % (spec["label"], spec["files"], human_bytes(spec["inflated"]), human_bytes(spec["size"]),
                        time.monotonic() - t0))
        # The burst: small signed packages (a handler and 2 KiB of random data, deflated).
        n = self.cfg["burst"]
        bdir = os.path.join(self.w, "burst")
        os.makedirs(bdir)
        srcs = []
        for i in range(n):
            src = os.path.join(bdir, "u%d.zip" % i)
            with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("lambda_function.py", "def handler(e, c):\n    return %d\n" % i)
                z.writestr("data.bin", rng.randbytes(2048))
            srcs.append(src)
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.nproc) as ex:
            self.burst_pkgs = list(ex.map(lambda s: self.sign(s, bdir), srcs))
        for s in srcs:
            os.unlink(s)
        self.burst_size = os.path.getsize(self.burst_pkgs[0])
        self.log("burst: %d signed packages of ~%s (%.1fs to sign)" % (n, human_bytes(self.burst_size), time.monotonic() - t0))

    @staticmethod
    def deflate_streams(path):
        """The raw deflate streams of a ZIP's entries, read at their local headers."""
        streams = []
        with open(path, "rb") as f, zipfile.ZipFile(path) as z:
            for zi in z.infolist():
                f.seek(zi.header_offset)
                h = f.read(30)
                nlen, xlen = int.from_bytes(h[26:28], "little"), int.from_bytes(h[28:30], "little")
                f.seek(zi.header_offset + 30 + nlen + xlen)
                data = f.read(zi.compress_size)
                if zi.compress_type == zipfile.ZIP_DEFLATED:
                    streams.append((data, zi.file_size))
        return streams

    # -- 1. the limit --

    def openssl_speed(self, extra, what):
        argv = ["openssl", "speed", "-mr", "-seconds", str(self.cfg["speed_seconds"])] + extra
        self.record_cmd(what, argv)
        out = sh(argv, timeout=300)
        return out

    def limits(self):
        r = self.results.setdefault("limit", {})
        runs = self.cfg["speed_runs"]

        def sha():
            vals = []
            for _ in range(runs):
                out = self.openssl_speed(["-bytes", "16384", "-evp", "sha384"], "openssl speed sha384")
                m = re.search(r"^\+F:\d+:sha384:([0-9.]+)", out, re.M)
                if not m:
                    raise Failure("no +F:…:sha384 line in openssl speed output")
                vals.append(float(m.group(1)) / 1e6)
            r["sha384_MBps"] = summarize(vals)
        self.measure("openssl speed sha384", sha)

        def ecdsa(multi, key):
            vals = []
            for _ in range(runs):
                extra = (["-multi", str(multi)] if multi else []) + ["ecdsap384"]
                out = self.openssl_speed(extra, "openssl speed ecdsap384" + (" -multi %d" % multi if multi else ""))
                lines = re.findall(r"^\+F4:\d+:384:([0-9.]+):([0-9.]+)\s*$", out, re.M)
                if not lines:
                    raise Failure("no +F4:…:384 line in openssl speed output")
                vals.append(float(lines[-1][1]))  # with -multi, the last line is the sum over processes
            r[key] = summarize(vals)
        self.measure("openssl speed ecdsap384", lambda: ecdsa(0, "ecdsa_verify_1"))
        self.measure("openssl speed ecdsap384 -multi 2", lambda: ecdsa(2, "ecdsa_verify_2"))
        if self.nproc != 2:
            self.measure("openssl speed ecdsap384 -multi nproc", lambda: ecdsa(self.nproc, "ecdsa_verify_n"))
        else:
            r["ecdsa_verify_n"] = r.get("ecdsa_verify_2")

        for spec in self.packages:
            def inflate(spec=spec):
                runs_ = max(3, spec["runs"])
                times = []
                out_bytes = sum(n for _, n in spec["deflate_streams"])
                for _ in range(runs_):
                    t0 = time.perf_counter()
                    total = 0
                    for data, _n in spec["deflate_streams"]:
                        d = zlib.decompressobj(-15)
                        total += len(d.decompress(data))
                    times.append(time.perf_counter() - t0)
                    if total != out_bytes:
                        raise Failure("inflated %d bytes, expected %d" % (total, out_bytes))
                spec["inflate_s"] = summarize(times)
                spec["inflate_MBps"] = summarize([out_bytes / t / 1e6 for t in times])
            self.measure("zlib inflate %s" % spec["label"], inflate)
        self.record_cmd("zlib inflate", "python3: zlib.decompressobj(-15).decompress(raw deflate stream) for every entry "
                                        "of the signed package, timed together")

    # -- 2. the stock pipeline --

    def stock(self):
        sdir = os.path.join(self.w, "stock")
        os.makedirs(sdir)
        script = os.path.join(self.w, "stock.sh")
        with open(script, "w") as f:
            f.write(STOCK_SCRIPT.replace("@PUB@", self.ossl_pub))
        self.stock_script_text = STOCK_SCRIPT.replace("@PUB@", "$W/keys/pub.pem")
        for spec in self.packages:
            def one(spec=spec):
                res = spec.setdefault("stock", {})
                pkg = spec["path"]
                steps = {"script": [], "verify": [], "unzip": [], "mv": [], "sync": []}
                for i in range(spec["runs"]):
                    dest = os.path.join(sdir, "dest-%d" % i)
                    os.sync()
                    dt, rc, _, err = timed_run(["sh", script, pkg, dest])
                    self.record_cmd("stock script", ["sh", "$W/stock.sh", "PKG", "DEST"])
                    if rc != 0:
                        raise Failure("stock script exited %d: %s" % (rc, err.strip()[:300]))
                    steps["script"].append(dt)
                    shutil.rmtree(dest)
                    # Each step on its own.
                    os.sync()
                    argv = ["openssl", "dgst", "-sha384", "-verify", self.ossl_pub, "-signature", pkg + ".sig", pkg]
                    self.record_cmd("stock verify", ["openssl", "dgst", "-sha384", "-verify", self.ossl_pub,
                                                     "-signature", "PKG.sig", "PKG"])
                    dt, rc, _, err = timed_run(argv)
                    if rc != 0:
                        raise Failure("openssl dgst -verify exited %d: %s" % (rc, err.strip()[:300]))
                    steps["verify"].append(dt)
                    tmp = tempfile.mkdtemp(dir=sdir, prefix="unzip-")
                    dt, rc, _, err = timed_run(["unzip", "-q", pkg, "-d", tmp])
                    self.record_cmd("stock unzip", ["unzip", "-q", "PKG", "-d", "TMP"])
                    if rc != 0:
                        raise Failure("unzip exited %d: %s" % (rc, err.strip()[:300]))
                    steps["unzip"].append(dt)
                    dt, rc, _, err = timed_run(["mv", "-T", tmp, dest])
                    self.record_cmd("stock mv", ["mv", "-T", "TMP", "DEST"])
                    if rc != 0:
                        raise Failure("mv exited %d: %s" % (rc, err.strip()[:300]))
                    steps["mv"].append(dt)
                    dt, rc, _, err = timed_run(["sync", "-f", dest])
                    self.record_cmd("stock sync (not in the script)", ["sync", "-f", "DEST"])
                    steps["sync"].append(dt)
                    shutil.rmtree(dest)
                for k, v in steps.items():
                    res[k] = summarize(v)
                for name, tool in self.tools.items():
                    times = []
                    for _ in range(spec["runs"]):
                        argv = tool["verify"](pkg)
                        self.record_cmd("%s verify" % name, [a.replace(pkg, "PKG") for a in argv])
                        dt, rc, _, err = timed_run(argv)
                        if rc != 0:
                            raise Failure("%s exited %d: %s" % (shlex.join(argv), rc, err.strip()[:300]))
                        times.append(dt)
                    res[name] = summarize(times)
            self.measure("stock pipeline %s" % spec["label"], one)
            self.log("stock pipeline %s done" % spec["label"])

    # -- 3. signgate --

    def peak_rss(self, argv):
        """Peak RSS (KiB) of one run of argv: ru_maxrss from wait4. The kernel carries the RSS
        high-water mark of the memory image a process replaces at exec into its ru_maxrss, so a
        child that the harness (a Python process of tens of MiB) forks or vforks would report
        at least the harness's own peak. GNU time forks from a ~2 MiB process and reports its
        child's wait4 ru_maxrss (%M), which is the measured program's own peak; without it the
        harness falls back to its own os.wait4 and says the figure is an upper bound."""
        if self.gnu_time:
            self.record_cmd("peak RSS", [self.gnu_time, "-f", "%M", "--", "COMMAND…"])
            with tempfile.NamedTemporaryFile(dir=self.w, prefix="time-") as out:
                _, rc, _, err = timed_run([self.gnu_time, "-f", "%M", "-o", out.name, "--"] + argv)
                if rc != 0:
                    raise Failure("%s exited %d under GNU time: %s" % (shlex.join(argv), rc, err.strip()[:300]))
                return int(open(out.name).read().split()[-1])
        self.record_cmd("peak RSS", "os.wait4(pid, 0) → ru_maxrss of a child of the harness (an upper bound: "
                                    "GNU time was not found)")
        _, rc, maxrss, err = timed_run(argv)
        if rc != 0:
            raise Failure("%s exited %d: %s" % (shlex.join(argv), rc, err.strip()[:300]))
        return maxrss

    def make_root(self, name):
        root = os.path.join(self.w, "roots", name)
        pol = os.path.join(root, "var/lib/signgate/policy")
        for d in ("signing-profiles", "code-signing-configs", "functions"):
            os.makedirs(os.path.join(pol, d))
        with open(os.path.join(pol, "signing-profiles", "%s@%s.json" % (PROFILE, self.profile_version)), "w") as f:
            f.write(self.profile_doc_text)
        with open(os.path.join(pol, "code-signing-configs", CSC + ".json"), "w") as f:
            json.dump({"CodeSigningConfigId": CSC,
                       "AllowedPublishers": {"SigningProfileVersionArns": ["%s/%s" % (PROFILE, self.profile_version)]},
                       "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}}, f)
        runs = max(p["runs"] for p in self.packages)
        names = (["in%d" % i for i in range(runs)] + ["api%d" % i for i in range(runs)]
                 + ["b%d" % i for i in range(self.cfg["burst_functions"])])
        for fn in names:
            with open(os.path.join(pol, "functions", fn + ".json"), "w") as f:
                json.dump({"FunctionName": fn, "CodeSigningConfigArn": CSC}, f)
        os.makedirs(os.path.join(root, "etc/signgate"))
        with open(os.path.join(root, "etc/signgate/signgated.json"), "w") as f:
            json.dump(GATE_SETTINGS, f)
        return root

    def start_gate(self, root, tag):
        logpath = os.path.join(self.w, "logs", "signgated-%s.log" % tag)
        os.makedirs(os.path.dirname(logpath), exist_ok=True)
        log = open(logpath, "wb")
        argv = [self.daemon, "--root", root, "--foreground"]
        self.record_cmd("signgated", [self.daemon, "--root", "$W/roots/NAME", "--foreground"])
        p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(p)
        g = {"proc": p, "root": root, "log": logpath, "tag": tag,
             "sock": os.path.join(root, "run/signgate/api.sock"),
             "inbox": os.path.join(root, "var/spool/signgate/inbox"),
             "audit": Audit(os.path.join(root, "var/log/signgate/audit.jsonl"))}
        deadline = time.monotonic() + 30
        while True:
            if p.poll() is not None:
                raise Failure("signgated (%s) exited %s at start-up; log: %s" % (tag, p.returncode, self.tail(logpath)))
            try:
                st, _, _ = http_unix(g["sock"], "GET", "/v1/health", timeout=5)
                if st == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failure("signgated (%s) not answering /v1/health after 30 s" % tag)
            time.sleep(0.02)
        g["ino"] = Inotify()
        g["ino"].watch(g["inbox"])
        os.makedirs(os.path.dirname(g["audit"].path), exist_ok=True)
        g["ino"].watch(os.path.dirname(g["audit"].path))
        return g

    @staticmethod
    def tail(path, n=5):
        try:
            with open(path, errors="replace") as f:
                return " | ".join(l.strip() for l in f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def alive(self, g):
        if g["proc"].poll() is not None:
            rc = g["proc"].returncode
            raise Failure("signgated (%s) exited %s%s while the harness waited; log: %s"
                          % (g["tag"], rc, " (signal %s)" % signal.Signals(-rc).name if rc < 0 else "",
                             self.tail(g["log"])))

    def wait_for(self, g, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            self.alive(g)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("%s: not done after %ss" % (what, timeout))
            g["ino"].wait(min(0.05, left))

    def stop_gate(self, g):
        p = g["proc"]
        hwm = read_proc_status(p.pid).get("VmHWM")
        g["ino"].close()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.problem("signgated (%s) did not exit within 60 s of SIGTERM; killed" % g["tag"])
                p.kill()
                p.wait()
        if p.returncode != 0:
            rc = p.returncode
            self.problem("signgated (%s) exited %s%s on SIGTERM; log: %s" % (
                g["tag"], rc, " (signal %s)" % signal.Signals(-rc).name if rc < 0 else "", self.tail(g["log"])))
        self.procs.remove(p)
        # The audit file's hash chain must hold after the run.
        if os.path.exists(g["audit"].path):
            argv = [self.cli, "audit", "verify", g["audit"].path]
            self.record_cmd("audit verify", [self.cli, "audit", "verify", "$W/roots/NAME/var/log/signgate/audit.jsonl"])
            pr = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            if pr.returncode != 0:
                self.problem("signgate audit verify (%s) exited %d: %s" % (g["tag"], pr.returncode,
                                                                           (pr.stdout + pr.stderr).strip()[:300]))
        # Anything the gate logged as an error.
        with open(g["log"], errors="replace") as f:
            bad = [l.strip() for l in f if re.search(r"INTERNAL|error|cannot|assert|Sanitizer", l, re.I)]
        if bad:
            self.problem("signgated (%s) logged %d error line(s), first: %s" % (g["tag"], len(bad), bad[0][:300]))
        with open(g["log"], errors="replace") as f:
            warn = [l.strip() for l in f if re.search(r"overflow|torn|could not|warn", l, re.I)]
        if warn:
            self.note("signgated (%s) logged %d warning line(s), first: %s" % (g["tag"], len(warn), warn[0][:300]))
        return hwm

    def metrics(self, g):
        st, body, _ = http_unix(g["sock"], "GET", "/metrics", timeout=30)
        out = {}
        for line in body.decode().splitlines():
            m = re.match(r"^(signgate_(?:verify|promote)_seconds)_(sum|count) ([0-9.eE+-]+)$", line)
            if m:
                out[m.group(1) + "_" + m.group(2)] = float(m.group(3))
        return out

    def check_record(self, rec, fn, what):
        if rec.get("function") != fn:
            raise Failure("%s: decision for %r, expected %r" % (what, rec.get("function"), fn))
        if rec.get("outcome") != "promoted":
            raise Failure("%s: %s %s: %s" % (what, rec.get("outcome"), rec.get("reasons"), rec.get("message")))

    def gate_sizes(self):
        for idx, spec in enumerate(self.packages):
            def one(spec=spec, idx=idx):
                res = spec.setdefault("gate", {})
                pkg = spec["path"]
                # Offline verify: wall time (spawned directly) and peak RSS (see peak_rss).
                times, rss = [], []
                argv = [self.cli, "verify", pkg, "--profile-doc", self.profile_doc]
                self.record_cmd("signgate verify", [self.cli, "verify", "PKG", "--profile-doc", "$W/keys/profile.json"])
                for _ in range(spec["runs"]):
                    dt, rc, _, err = timed_run(argv)
                    if rc != 0:
                        raise Failure("signgate verify exited %d: %s" % (rc, err.strip()[:300]))
                    times.append(dt)
                    rss.append(self.peak_rss(argv))
                res["verify"] = summarize(times)
                res["verify_rss_kib"] = max(rss)
                # A fresh gate for this size, so its VmHWM is this size's peak.
                root = self.make_root("size%d" % idx)
                g = self.start_gate(root, "size%d" % idx)
                try:
                    m0 = self.metrics(g)
                    drop, durable = [], []
                    for i in range(spec["runs"]):
                        fn, name = "in%d" % i, "in%d@r%d.zip" % (i, i)
                        tmp = os.path.join(g["inbox"], "." + name + ".tmp")
                        shutil.copyfile(pkg, tmp)
                        os.sync()
                        n = g["audit"].poll()
                        final = os.path.join(g["inbox"], name)
                        t0 = time.perf_counter()
                        os.rename(tmp, final)
                        self.wait_for(g, lambda: g["audit"].poll() > n, 900, "inbox decision for %s" % name)
                        t1 = time.perf_counter()
                        self.wait_for(g, lambda: not os.path.exists(final), 900, "inbox removal of %s" % name)
                        t2 = time.perf_counter()
                        self.check_record(g["audit"].records[n], fn, "inbox %s" % spec["label"])
                        rel = g["audit"].records[n].get("release")
                        cur = os.path.join(root, "var/lib/signgate/runtime/functions", fn, "current")
                        if not rel or os.readlink(cur).rsplit("/", 1)[-1] != rel:
                            raise Failure("inbox %s: %s/current does not point at release %s" % (spec["label"], fn, rel))
                        drop.append(t1 - t0)
                        durable.append(t2 - t0)
                    res["inbox"] = summarize(drop)
                    res["inbox_removed"] = summarize(durable)
                    self.record_cmd("inbox drop", "cp PKG $W/roots/NAME/var/spool/signgate/inbox/.F@rN.zip.tmp; sync; "
                                                  "timed: rename(… .F@rN.zip.tmp → F@rN.zip) until its line is in "
                                                  "var/log/signgate/audit.jsonl (and until the inbox entry is gone)")
                    body = open(pkg, "rb").read()
                    up = []
                    for i in range(spec["runs"]):
                        fn = "api%d" % i
                        os.sync()
                        st, data, dt = http_unix(g["sock"], "PUT", "/v1/functions/%s/code" % fn, body=body, timeout=900)
                        if st != 200:
                            raise Failure("PUT /v1/functions/%s/code answered %d: %s" % (fn, st, data[:300]))
                        self.check_record(json.loads(data), fn, "API %s" % spec["label"])
                        up.append(dt)
                    del body
                    res["api"] = summarize(up)
                    self.record_cmd("API upload", "PUT /v1/functions/F/code over $W/roots/NAME/run/signgate/api.sock "
                                                  "(Python http.client on AF_UNIX; as `curl --unix-socket SOCK -T PKG "
                                                  "http://localhost/v1/functions/F/code`), timed from the request's "
                                                  "first byte to the decision in the response")
                    m1 = self.metrics(g)
                    dc = m1.get("signgate_verify_seconds_count", 0) - m0.get("signgate_verify_seconds_count", 0)
                    if dc > 0:
                        res["daemon_verify_mean"] = (m1["signgate_verify_seconds_sum"] - m0.get("signgate_verify_seconds_sum", 0)) / dc
                    pc = m1.get("signgate_promote_seconds_count", 0) - m0.get("signgate_promote_seconds_count", 0)
                    if pc > 0:
                        res["daemon_promote_mean"] = (m1["signgate_promote_seconds_sum"] - m0.get("signgate_promote_seconds_sum", 0)) / pc
                finally:
                    res["daemon_hwm_kib"] = self.stop_gate(g)
                    shutil.rmtree(root, ignore_errors=True)
            self.measure("signgate %s" % spec["label"], one)
            self.log("signgate %s done" % spec["label"])

    def burst(self):
        res = self.results.setdefault("burst", {"rates": [], "api_rates": [], "health": [], "health_api": [],
                                                "health_idle": [], "health_errors": 0, "hwm": [], "per_run_p99": []})
        F = self.cfg["burst_functions"]
        for run in range(self.cfg["burst_runs"]):
            def one(run=run):
                root = self.make_root("burst%d" % run)
                g = self.start_gate(root, "burst%d" % run)
                try:
                    # Idle health latency first (the baseline).
                    for _ in range(self.cfg["health_idle_samples"]):
                        st, _, dt = http_unix(g["sock"], "GET", "/v1/health", timeout=10)
                        res["health_idle"].append(dt)
                        time.sleep(0.002)
                    staged = []
                    for i, pkg in enumerate(self.burst_pkgs):
                        name = "b%d@r%di%d.zip" % (i % F, run, i)
                        tmp = os.path.join(g["inbox"], "." + name + ".tmp")
                        shutil.copyfile(pkg, tmp)
                        staged.append((tmp, os.path.join(g["inbox"], name)))
                    os.sync()
                    n0 = g["audit"].poll()
                    sampler = HealthSampler(g["sock"])
                    sampler.start()
                    t0 = time.perf_counter()
                    for a, b in staged:
                        os.rename(a, b)
                    total = n0 + len(staged)
                    self.wait_for(g, lambda: g["audit"].poll() >= total, 900, "burst decisions")
                    dt = time.perf_counter() - t0
                    sampler.stop()
                    res["rates"].append(len(staged) / dt)
                    res["health"].extend(sampler.samples)
                    res["per_run_p99"].append(summarize(sampler.samples)["p99"])
                    res["health_errors"] += sampler.errors
                    bad = [r for r in g["audit"].records[n0:] if r.get("outcome") != "promoted"]
                    if bad:
                        raise Failure("burst: %d of %d decisions not promoted, first: %s %s" % (
                            len(bad), len(staged), bad[0].get("outcome"), bad[0].get("reasons")))
                    self.record_cmd("burst", "cp each of N small signed packages to inbox/.F@….zip.tmp; sync; timed: "
                                             "rename all (functions b0…b%d round-robin) until the N-th decision line is "
                                             "in the audit file" % (F - 1))
                    self.record_cmd("health", "GET /v1/health on a new connection every 5 ms, from a second thread, "
                                              "while the burst runs")
                    # The same packages uploaded through the API by concurrent clients, each to the
                    # next function (so every upload is a real promotion, not a re-drop of the live one).
                    queue = list(enumerate(self.burst_pkgs))
                    lock = threading.Lock()
                    errors = []

                    def client():
                        while True:
                            with lock:
                                if not queue or errors:
                                    return
                                i, path = queue.pop()
                            try:
                                with open(path, "rb") as f:
                                    body = f.read()
                                fn = "b%d" % ((i + 1) % F)
                                st, data, _ = http_unix(g["sock"], "PUT", "/v1/functions/%s/code" % fn, body=body)
                                if st != 200:
                                    raise Failure("PUT %s answered %d: %s" % (fn, st, data[:200]))
                                self.check_record(json.loads(data), fn, "API burst")
                            except Exception as e:  # noqa: BLE001 - reported below
                                errors.append(e)
                                return
                    sampler = HealthSampler(g["sock"])
                    sampler.start()
                    t0 = time.perf_counter()
                    threads = [threading.Thread(target=client) for _ in range(self.cfg["api_clients"])]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    dt = time.perf_counter() - t0
                    sampler.stop()
                    if errors:
                        raise Failure("API burst: %s" % errors[0])
                    res["api_rates"].append(len(self.burst_pkgs) / dt)
                    res["health_api"].extend(sampler.samples)
                    res["health_errors"] += sampler.errors
                    self.record_cmd("API burst", "the same N packages PUT by %d concurrent clients (a new connection "
                                                 "each), package i to function b((i+1) mod %d)" % (self.cfg["api_clients"], F))
                finally:
                    hwm = self.stop_gate(g)
                    if hwm:
                        res["hwm"].append(hwm)
                    shutil.rmtree(root, ignore_errors=True)
            self.measure("burst run %d" % run, one)
            self.log("burst run %d done" % run)
        if res["health_errors"]:
            self.problem("%d /v1/health requests failed during the bursts" % res["health_errors"])

    # -- the report --

    def targets(self):
        rows = []
        lim = self.results.get("limit", {})
        sha = lim.get("sha384_MBps", {}).get("median")
        ec1 = lim.get("ecdsa_verify_1", {}).get("median")
        ecn = (lim.get("ecdsa_verify_n") or {}).get("median")
        by_role = {p.get("role"): p for p in self.packages if p.get("role")}
        largest = max(self.packages, key=lambda p: p.get("size", 0))

        def row(name, measured, unit, reference, ratio, threshold, ok):
            rows.append((name, measured, unit, reference, ratio, threshold, ok))

        for spec in sorted(by_role.values(), key=lambda p: p["size"]):
            v = spec.get("gate", {}).get("verify")
            if v and sha and ec1:
                bound = spec["size"] / (sha * 1e6) + 1 / ec1
                ratio = v["median"] / bound
                mark = " (the largest package)" if spec is largest else ""
                row("verify-only, %s%s ≤ 1.15 × (size / sha384 rate + 1 / ECDSA verifies/s)" % (spec["label"], mark),
                    fmt(v["median"] * 1000), "ms", fmt(bound * 1000) + " ms", ratio, "≤ 1.15", ratio <= 1.15)
        for spec in sorted(by_role.values(), key=lambda p: p["size"]):
            e2e = spec.get("gate", {}).get("inbox")
            st = spec.get("stock", {}).get("script")
            if e2e and st:
                ratio = e2e["median"] / st["median"]
                row("end-to-end (drop → promoted), %s ≤ 0.5 × stock pipeline" % spec["label"],
                    fmt(e2e["median"] * 1000), "ms", fmt(st["median"] * 1000) + " ms", ratio, "≤ 0.5", ratio <= 0.5)
            if e2e and sha and spec.get("inflate_s"):
                hash_s = spec["size"] / (sha * 1e6)
                ref = max(hash_s, spec["inflate_s"]["median"])
                ratio = e2e["median"] / ref
                row("end-to-end (drop → promoted), %s ≤ 1.2 × max(hash time, inflate time)" % spec["label"],
                    fmt(e2e["median"] * 1000), "ms", "max(%s, %s) ms" % (fmt(hash_s * 1000), fmt(spec["inflate_s"]["median"] * 1000)),
                    ratio, "≤ 1.2", ratio <= 1.2)
        b = self.results.get("burst", {})
        if b.get("rates") and ecn:
            rate = statistics.median(b["rates"])
            ratio = rate / ecn
            row("burst decisions/s ≥ 0.70 × ECDSA verify bound on all %d cores (openssl -multi %d)" % (self.nproc, self.nproc),
                fmt(rate), "decisions/s", fmt(ecn) + " verifies/s", ratio, "≥ 0.70", ratio >= 0.70)
        for spec in self.packages:
            gate = spec.get("gate", {})
            if gate.get("daemon_hwm_kib"):
                kib = gate["daemon_hwm_kib"]
                row("peak RSS < 32 MiB: signgated (VmHWM), %s" % spec["label"], fmt(kib / 1024), "MiB", "32 MiB",
                    kib / RSS_LIMIT_KIB, "< 1", kib < RSS_LIMIT_KIB)
            if gate.get("verify_rss_kib"):
                kib = gate["verify_rss_kib"]
                row("peak RSS < 32 MiB: signgate verify (ru_maxrss), %s" % spec["label"], fmt(kib / 1024), "MiB", "32 MiB",
                    kib / RSS_LIMIT_KIB, "< 1", kib < RSS_LIMIT_KIB)
        if b.get("hwm"):
            kib = max(b["hwm"])
            row("peak RSS < 32 MiB: signgated (VmHWM), burst of %d (inbox + API)" % self.cfg["burst"], fmt(kib / 1024),
                "MiB", "32 MiB", kib / RSS_LIMIT_KIB, "< 1", kib < RSS_LIMIT_KIB)
        if b.get("health"):
            p99 = summarize(b["health"])["p99"]
            row("health p99 < 10 ms during the inbox burst", fmt(p99 * 1000), "ms", "10 ms", p99 / 0.010, "< 1", p99 < 0.010)
        return rows

    def write_report(self, elapsed):
        L = []
        a = L.append
        lim = self.results.get("limit", {})
        mode = "quick (`--quick`: tiny sizes, few runs, a small burst, no 250 MiB package)" if self.quick else "full"
        a("# signgate benchmark results")
        a("")
        a("Generated %s by `%s` (mode: %s) in %s s. Regenerate with `bench/run.sh` on a quiet machine; see "
          "[bench/README.md](README.md) for what each figure means." % (
              datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              self.show(["bench/run.sh"] + self.argv_shown), mode, fmt(elapsed)))
        a("")
        if self.args.label:
            a("> %s" % self.args.label)
            a("")
        a("Times are wall-clock; each figure is the **median** over the runs, with the spread as min–max "
          "(and p10/p90 where there are 10 or more runs). MB/s = 10^6 bytes/s; KiB/MiB are binary.")
        a("")
        a("## Machine")
        a("")
        a("| what | value |")
        a("|---|---|")
        for k, v in self.machine_info.items():
            a("| %s | %s |" % (k, v))
        a("| load average at end | %s |" % " ".join(open("/proc/loadavg").read().split()[:3]))
        a("")
        a("## Versions")
        a("")
        a("| tool | version |")
        a("|---|---|")
        for k, v in self.version_info.items():
            a("| %s | %s |" % (k, v))
        a("")
        if self.notes:
            for n in self.notes:
                a("- Note: %s" % n)
            a("")
        a("## Packages")
        a("")
        a("Generated with a fixed seed and signed with `signgate signer start-signing-job`; every entry deflated.")
        a("")
        a("| package | content | files | inflated bytes | signed zip bytes | runs |")
        a("|---|---|---|---|---|---|")
        for p in self.packages:
            if "size" not in p:
                continue
            content = ("random (incompressible)" if p["kind"] == "random"
                       else "text-like (generated code, JSON and log lines), ratio %s:1" % fmt(p["inflated"] / p["size"]))
            a("| %s | %s | %d | %s (%s) | %s (%s) | %d |" % (p["label"], content, p["files"], "{:,}".format(p["inflated"]),
                                                       human_bytes(p["inflated"]), "{:,}".format(p["size"]),
                                                       human_bytes(p["size"]), p["runs"]))
        if getattr(self, "burst_pkgs", None):
            a("| burst | %d packages of a handler + 2 KiB random, across %d functions | 2 | ~2,100 | ~%s | %d burst(s) |" % (
                len(self.burst_pkgs), self.cfg["burst_functions"], "{:,}".format(self.burst_size), self.cfg["burst_runs"]))
        a("")
        a("## Commands")
        a("")
        a("`$W` is the harness's work directory, `$BUILD` the build directory, `PKG` a signed package.")
        a("")
        a("```sh")
        for k, v in self.commands.items():
            a("# %s" % k)
            a(v)
        a("```")
        a("")
        a("The stock pipeline script (`$W/stock.sh PKG DEST`):")
        a("")
        a("```sh")
        a(getattr(self, "stock_script_text", STOCK_SCRIPT).rstrip())
        a("```")
        a("")
        a("The gate's settings (`etc/signgate/signgated.json`): `%s`; policy: one Enforce code signing config "
          "allowing the bench profile, bound to every function used. A fresh gate (new root, new process) "
          "serves each package size and each burst run." % json.dumps(GATE_SETTINGS))
        a("")

        def srow(name, s, unit, scale=1.0):
            if not s:
                return
            spread = "%s – %s" % (fmt(s["min"] * scale), fmt(s["max"] * scale))
            p = "%s / %s" % (fmt(s["p10"] * scale), fmt(s["p90"] * scale)) if s["n"] >= 10 else "–"
            a("| %s | %s | %s | %s | %s | %d |" % (name, unit, fmt(s["median"] * scale), spread, p, s["n"]))

        head = ["| measurement | unit | median | min – max | p10 / p90 | runs |", "|---|---|---|---|---|---|"]
        a("## 1. The limit")
        a("")
        L.extend(head)
        srow("openssl speed -evp sha384, 16 KiB blocks", lim.get("sha384_MBps"), "MB/s")
        srow("openssl speed ecdsap384, verify, 1 core", lim.get("ecdsa_verify_1"), "verifies/s")
        srow("openssl speed ecdsap384 -multi 2, verify", lim.get("ecdsa_verify_2"), "verifies/s")
        if self.nproc != 2:
            srow("openssl speed ecdsap384 -multi %d, verify" % self.nproc, lim.get("ecdsa_verify_n"), "verifies/s")
        for p in self.packages:
            srow("zlib inflate, %s (output rate)" % p["label"], p.get("inflate_MBps"), "MB/s")
            srow("zlib inflate, %s (time)" % p["label"], p.get("inflate_s"), "ms", 1000)
        if lim.get("sha384_MBps"):
            for p in self.packages:
                if "size" in p:
                    a("| sha384 of %s at the openssl rate (computed: size / rate) | ms | %s | – | – | – |" % (
                        p["label"], fmt(p["size"] / (lim["sha384_MBps"]["median"] * 1e6) * 1000)))
        a("")
        a("## 2. The stock pipeline")
        a("")
        L.extend(head)
        for p in self.packages:
            s = p.get("stock", {})
            srow("%s: whole script (verify + unzip + mv)" % p["label"], s.get("script"), "ms", 1000)
            srow("%s: openssl dgst -sha384 -verify" % p["label"], s.get("verify"), "ms", 1000)
            srow("%s: unzip -q" % p["label"], s.get("unzip"), "ms", 1000)
            srow("%s: mv -T into place" % p["label"], s.get("mv"), "ms", 1000)
            srow("%s: sync -f of the result (not in the script)" % p["label"], s.get("sync"), "ms", 1000)
            for name in ("gpgv", "minisign", "signify"):
                srow("%s: %s verify" % (p["label"], name), s.get(name), "ms", 1000)
        a("")
        if self.tools:
            a("Other verifiers: " + "; ".join("%s — %s" % (n, t["what"]) for n, t in self.tools.items()) + ".")
            a("")
        a("## 3. signgate")
        a("")
        L.extend(head)
        for p in self.packages:
            gr = p.get("gate", {})
            srow("%s: signgate verify (offline)" % p["label"], gr.get("verify"), "ms", 1000)
            srow("%s: inbox drop → decision in the audit file" % p["label"], gr.get("inbox"), "ms", 1000)
            srow("%s: inbox drop → inbox entry removed (record fsynced)" % p["label"], gr.get("inbox_removed"), "ms", 1000)
            srow("%s: API upload → decision" % p["label"], gr.get("api"), "ms", 1000)
            if gr.get("daemon_verify_mean") is not None:
                a("| %s: gate's own mean copy+verify+extract time (/metrics) | ms | %s | – | – | %d |" % (
                    p["label"], fmt(gr["daemon_verify_mean"] * 1000), 2 * p["runs"]))
            if gr.get("daemon_promote_mean") is not None:
                a("| %s: gate's own mean promote time (/metrics) | ms | %s | – | – | %d |" % (
                    p["label"], fmt(gr["daemon_promote_mean"] * 1000), 2 * p["runs"]))
            if gr.get("daemon_hwm_kib"):
                a("| %s: signgated peak RSS (VmHWM, fresh daemon) | MiB | %s | – | – | 1 daemon |" % (
                    p["label"], fmt(gr["daemon_hwm_kib"] / 1024)))
            if gr.get("verify_rss_kib"):
                a("| %s: signgate verify peak RSS (wait4 ru_maxrss%s, max over runs) | MiB | %s | – | – | %d |" % (
                    p["label"], " via GNU time" if self.gnu_time else ", upper bound", fmt(gr["verify_rss_kib"] / 1024),
                    p["runs"]))
        b = self.results.get("burst", {})
        if b.get("rates"):
            srow("burst of %d via the inbox (%d functions): decisions/s" % (self.cfg["burst"], self.cfg["burst_functions"]),
                 summarize(b["rates"]), "decisions/s")
        if b.get("api_rates"):
            srow("burst of %d via the API (%d clients): decisions/s" % (self.cfg["burst"], self.cfg["api_clients"]),
                 summarize(b["api_rates"]), "decisions/s")
        for key, what in (("health_idle", "idle"), ("health", "during the inbox burst"),
                          ("health_api", "during the API burst")):
            if b.get(key):
                s = summarize(b[key])
                a("| GET /v1/health latency %s: p50 / p99 | ms | %s / %s | %s – %s | %s / %s | %d samples |" % (
                    what, fmt(s["p50"] * 1000), fmt(s["p99"] * 1000), fmt(s["min"] * 1000), fmt(s["max"] * 1000),
                    fmt(s["p10"] * 1000), fmt(s["p90"] * 1000), s["n"]))
        if b.get("per_run_p99") and len(b["per_run_p99"]) > 1:
            s = summarize(b["per_run_p99"])
            a("| GET /v1/health p99 during the inbox burst, per burst run | ms | %s | %s – %s | – | %d |" % (
                fmt(s["median"] * 1000), fmt(s["min"] * 1000), fmt(s["max"] * 1000), s["n"]))
        if b.get("hwm"):
            a("| burst: signgated peak RSS (VmHWM, max over fresh daemons) | MiB | %s | %s – %s | – | %d |" % (
                fmt(max(b["hwm"]) / 1024), fmt(min(b["hwm"]) / 1024), fmt(max(b["hwm"]) / 1024), len(b["hwm"])))
        a("")
        a("## 4. Targets")
        a("")
        a("Measured = the median above; reference = the bound it is compared with (computed from section 1, "
          "or the stock pipeline's median); ratio = measured / reference.")
        a("")
        a("| target | measured | unit | reference | ratio | needs | result |")
        a("|---|---|---|---|---|---|---|")
        for name, measured, unit, ref, ratio, thr, ok in self.targets():
            a("| %s | %s | %s | %s | %s | %s | %s |" % (name, measured, unit, ref, fmt(ratio), thr,
                                                      "PASS" if ok else "**MISS**"))
        a("")
        a("## Problems seen")
        a("")
        if self.problems:
            for pr in self.problems:
                a("- %s" % pr.replace("\n", " "))
        else:
            a("None: every decision was `promoted`, every gate exited 0 on SIGTERM, every audit chain verified, "
              "no error was logged.")
        a("")
        out = os.path.abspath(self.args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(L))
        os.replace(tmp, out)
        return out

    def run(self, argv_shown):
        self.argv_shown = argv_shown
        self.t_start = time.monotonic()
        for path in (self.cli, self.daemon):
            if not os.access(path, os.X_OK):
                print("bench: %s is missing: build first (contrib/build.sh) and pass --build DIR" % path, file=sys.stderr)
                return 2
        base = self.args.workdir or ("/var/tmp" if os.path.isdir("/var/tmp") else None)
        self.w = tempfile.mkdtemp(prefix="sgb-", dir=base)
        try:
            longest = os.path.join(self.w, "roots", "burst99", "run/signgate/api.sock")
            if len(os.fsencode(longest)) > 107:
                self.machine_info = self.machine()
                raise Failure("the work directory %s is too long for the gate's unix socket path (%d > 107 bytes): "
                              "pass a shorter --workdir" % (self.w, len(os.fsencode(longest))))
            self.machine_info = self.machine()
            self.ensure_tools()
            self.gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
            if not self.gnu_time:
                self.note("GNU time (/usr/bin/time) is missing: signgate verify's peak RSS is the harness's own "
                          "os.wait4 ru_maxrss, an upper bound that includes the harness's RSS at exec")
            self.version_info = self.versions()
            self.log("work dir %s; build %s; mode %s" % (self.w, self.build, "quick" if self.quick else "full"))
            self.keys()
            self.prepare_packages()
            self.limits()
            self.log("limits done")
            self.stock()
            self.gate_sizes()
            self.burst()
        except Failure as e:
            self.problem(str(e))
        except Exception as e:  # noqa: BLE001 - the report says what broke
            self.problem("harness: %s: %s" % (e.__class__.__name__, e))
            traceback.print_exc()
        finally:
            for p in list(self.procs):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            if self.gpg_home:
                subprocess.run(["gpgconf", "--homedir", self.gpg_home, "--kill", "all"], capture_output=True)
            if not self.args.keep:
                shutil.rmtree(self.w, ignore_errors=True)
            else:
                self.log("kept work dir %s" % self.w)
        elapsed = time.monotonic() - self.t_start
        if not hasattr(self, "machine_info"):
            return 1
        if not hasattr(self, "version_info"):
            self.version_info = {}
        out = self.write_report(elapsed)
        self.log("report written to %s (%.0f s in all)" % (out, elapsed))
        return 1 if self.problems else 0


class HealthSampler(threading.Thread):
    """GET /v1/health on a new connection every `interval` seconds until stopped."""

    def __init__(self, sock, interval=0.005):
        super().__init__(daemon=True)
        self.sock, self.interval = sock, interval
        self.samples, self.errors = [], 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                st, _, dt = http_unix(self.sock, "GET", "/v1/health", timeout=10)
                if st == 200:
                    self.samples.append(dt)
                else:
                    self.errors += 1
            except OSError:
                self.errors += 1
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join()


GATE_SETTINGS = {"journal": True, "retainReleases": 3}

STOCK_SCRIPT = """#!/bin/sh
# What a careful admin scripts for one package: check the detached signature over the whole
# file, extract into a temporary directory beside the destination, rename it into place.
set -eu
pkg=$1 dest=$2
openssl dgst -sha384 -verify @PUB@ -signature "$pkg.sig" "$pkg" >/dev/null
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
unzip -q "$pkg" -d "$tmp" >/dev/null
mv -T "$tmp" "$dest"
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few runs, a small burst, no 250 MiB package")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="the Markdown report (default bench/RESULTS.md)")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"), help="the build directory (default build/)")
    ap.add_argument("--runs", type=int, default=0, help="runs per measurement (default: per size, see README)")
    ap.add_argument("--burst", type=int, default=0, help="packages in the burst (default 1000; --quick 60)")
    ap.add_argument("--workdir", default=None, help="parent of the temporary work directory (default /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--label", default="", help="a line quoted at the top of the report (the run's conditions)")
    ap.add_argument("--install-tools", dest="install_tools", action="store_true", default=None,
                    help="apt-get install gpgv, minisign, signify-openbsd when missing (as root; default unless --quick)")
    ap.add_argument("--no-install-tools", dest="install_tools", action="store_false")
    args = ap.parse_args(argv)
    if args.install_tools is None:
        args.install_tools = not args.quick
    if args.runs < 0 or args.burst < 0:
        ap.error("--runs and --burst must be positive")
    shown, skip = [], False
    for a in argv:  # the label is quoted in the report on its own
        if skip or a == "--label" or a.startswith("--label="):
            skip = a == "--label"
            continue
        shown.append(a)
    return Bench(args).run(shown)


if __name__ == "__main__":
    sys.exit(main())
