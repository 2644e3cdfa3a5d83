#!/usr/bin/python3
"""Inbox drop → decision and API upload → decision figures for signgated.

    /usr/bin/python3 bench/gate_inbox.py [--build DIR] [--size-mib 1] [--latency-runs 20]
                                          [--burst 500] [--functions 20]

Starts the real gate on a temporary root with a policy store (one Enforce CSC, N functions),
signs packages with the real CLI, then measures
  * latency: a signed package of --size-mib MiB (random, stored) renamed into the inbox, until
    its decision line is in the audit file (fsynced) — median and spread of --latency-runs runs;
  * throughput: --burst small signed packages across --functions functions renamed in at once,
    until the last decision is recorded — decisions per second.
  * API: the same packages uploaded with PUT /v1/functions/F/code over the unix socket (latency
    from the first byte sent to the decision in the response), and --burst uploads from
    --clients concurrent clients (decisions per second).
It prints a JSON summary. Timing is measured here, never asserted in the test suite; the test
suite runs this script on a tiny size only to check that it works.
"""

import argparse
import http.client
import json
import socket
import threading
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile


def sh(*args, env=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--size-mib", type=float, default=1.0)
    ap.add_argument("--latency-runs", type=int, default=20)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--functions", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    cli = os.path.join(args.build, "cli", "signgate")
    daemon = os.path.join(args.build, "daemon", "signgated")

    tmp = tempfile.mkdtemp(prefix="signgate-bench-")
    env = dict(os.environ, SIGNGATE_SIGNER_HOME=os.path.join(tmp, "signer"))
    gate_proc = None
    try:
        sh(cli, "signer", "put-signing-profile", "--profile-name", "Bench",
           "--platform-id", "AWSLambda-SHA384-ECDSA", env=env)
        prof = sh(cli, "signer", "get-signing-profile", "--profile-name", "Bench", env=env)
        version = json.loads(prof)["profileVersion"]

        root = os.path.join(tmp, "gate")
        pol = os.path.join(root, "var/lib/signgate/policy")
        for d in ("signing-profiles", "code-signing-configs", "functions"):
            os.makedirs(os.path.join(pol, d))
        open(os.path.join(pol, "signing-profiles", "Bench@%s.json" % version), "w").write(prof)
        csc = "csc-0123456789abcdef0"
        json.dump({"CodeSigningConfigId": csc,
                   "AllowedPublishers": {"SigningProfileVersionArns": ["Bench/" + version]},
                   "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"}},
                  open(os.path.join(pol, "code-signing-configs", csc + ".json"), "w"))
        for i in range(args.functions):
            json.dump({"FunctionName": "fn%d" % i, "CodeSigningConfigArn": csc},
                      open(os.path.join(pol, "functions", "fn%d.json" % i), "w"))
        os.makedirs(os.path.join(root, "etc/signgate"))
        json.dump({"journal": True, "retainReleases": 3},
                  open(os.path.join(root, "etc/signgate/signgated.json"), "w"))

        def make_signed(name, payload, stored):
            src = os.path.join(tmp, name + ".zip")
            with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
                z.writestr("lambda_function.py", "def handler(e, c):\n    return %r\n" % name)
                z.writestr("data.bin", payload)
            out = json.loads(sh(cli, "signer", "start-signing-job", "--source", src, "--destination",
                                os.path.join(tmp, "signed"), "--profile-name", "Bench", env=env))
            return os.path.join(tmp, "signed", out["jobId"] + ".zip")

        size = int(args.size_mib * 1024 * 1024)
        big = [make_signed("big%d" % i, os.urandom(size), True) for i in range(args.latency_runs)]
        small = [make_signed("s%d" % i, os.urandom(2048), False) for i in range(args.burst)]

        gate_proc = subprocess.Popen([daemon, "--root", root, "--foreground"],
                                     stderr=subprocess.DEVNULL)
        # (the daemon's readiness: its inbox exists and it is still alive a moment later)
        inbox = os.path.join(root, "var/spool/signgate/inbox")
        audit = os.path.join(root, "var/log/signgate/audit.jsonl")
        deadline = time.time() + 10
        while not os.path.isdir(inbox) and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)

        def alive():
            if gate_proc.poll() is not None:
                raise SystemExit("signgated exited with status %s" % gate_proc.returncode)

        def wait_lines(n, timeout=120):
            deadline = time.time() + timeout
            while lines() < n:
                alive()
                if time.time() > deadline:
                    raise SystemExit("no decision %d after %ss" % (n, timeout))
                time.sleep(0.0005)

        def lines():
            try:
                with open(audit, "rb") as f:
                    return f.read().count(b"\n")
            except FileNotFoundError:
                return 0

        def drop(path, name):
            tmpname = os.path.join(inbox, "." + name + ".tmp")
            shutil.copyfile(path, tmpname)
            t = time.perf_counter()
            os.rename(tmpname, os.path.join(inbox, name))
            return t

        latencies = []
        for i, path in enumerate(big):
            n = lines()
            t0 = drop(path, "fn0@%d.zip" % i)
            wait_lines(n + 1)
            latencies.append((time.perf_counter() - t0) * 1000)

        # The burst: copy everything in under ignored names first, then rename all at once.
        n0 = lines()
        staged = []
        for i, path in enumerate(small):
            name = "fn%d@b%d.zip" % (i % args.functions, i)
            tmpname = os.path.join(inbox, "." + name + ".tmp")
            shutil.copyfile(path, tmpname)
            staged.append((tmpname, os.path.join(inbox, name)))
        t0 = time.perf_counter()
        for a, b in staged:
            os.rename(a, b)
        wait_lines(n0 + len(small))
        burst_s = time.perf_counter() - t0

        sock = os.path.join(root, "run/signgate/api.sock")

        class UnixHTTP(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(sock)

        def upload(path, function):
            body = open(path, "rb").read()
            c = UnixHTTP("localhost", timeout=120)
            t = time.perf_counter()
            c.request("PUT", "/v1/functions/%s/code" % function, body=body)
            resp = c.getresponse()
            data = resp.read()
            c.close()
            if resp.status != 200:
                raise SystemExit("upload answered %d: %s" % (resp.status, data[:300]))
            return (time.perf_counter() - t) * 1000

        api_latencies = [upload(path, "fn1") for path in big]
        queue = list(enumerate(small))
        lock = threading.Lock()
        errors = []

        def client():
            while True:
                with lock:
                    if not queue:
                        return
                    i, path = queue.pop()
                try:
                    upload(path, "fn%d" % (i % args.functions))
                except BaseException as e:  # noqa: B902 - reported below
                    errors.append(e)
                    return
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        api_burst_s = time.perf_counter() - t0
        if errors:
            raise SystemExit("API burst failed: %r" % errors[0])

        records = [json.loads(l) for l in open(audit)]
        outcomes = {}
        for r in records:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        result = {
            "package_mib": args.size_mib,
            "latency_ms": {"runs": len(latencies), "median": round(statistics.median(latencies), 2),
                           "min": round(min(latencies), 2), "max": round(max(latencies), 2)},
            "burst": {"packages": len(small), "functions": args.functions, "seconds": round(burst_s, 3),
                      "decisions_per_second": round(len(small) / burst_s, 1)},
            "api_latency_ms": {"runs": len(api_latencies), "median": round(statistics.median(api_latencies), 2),
                               "min": round(min(api_latencies), 2), "max": round(max(api_latencies), 2)},
            "api_burst": {"uploads": len(small), "clients": args.clients, "seconds": round(api_burst_s, 3),
                          "decisions_per_second": round(len(small) / api_burst_s, 1)},
            "outcomes": outcomes,
            "nproc": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
        if outcomes.get("promoted", 0) != len(records):
            print("not every package was promoted: %s" % outcomes, file=sys.stderr)
            return 1
        return 0
    finally:
        if gate_proc:
            gate_proc.terminate()
            gate_proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
