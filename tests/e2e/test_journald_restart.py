"""signgated keeps journald complete across a journald outage (issue 5 item 3;
daemon/journal_relay.h; docs/operations.md, "When journald is away").

The gate runs in a private mount namespace that has its own journald: there /run is an empty
tmpfs holding /run/systemd/journal and /run/log/journal, and /var/log/journal, when the machine
has one, is covered by another tmpfs. The namespace is held by a `sleep` the test starts; the
test starts, kills and restarts that namespace's journald (its own child, signalled by pid)
while the gate runs, and reads it with `nsenter --mount=… journalctl`. The machine's shared
journald, which other tests read in parallel, is never signalled; its socket is checked at the
end of every test.

1. Outage and recovery, in two ways: journald SIGKILLed (its socket stays behind with nobody
   listening, so sends fail with ECONNREFUSED), and journald stopped with SIGTERM and its socket
   removed (sd-journal drops an entry sent to a missing socket without an error, which the relay
   must notice all the same). Decisions before the outage reach journald as they are made;
   decisions during it (inbox promotions and rejections, an API upload) are made and recorded as
   usual; once journald is back, it holds exactly one entry per decision, in audit order, those
   made during the outage with SIGNGATE_REPLAYED=1, plus one event counting them; a decision
   after that is sent live again. The SIGKILL run's backlog is longer than one replay batch
   (GATE_RELAY_BATCH, 250), so the paced continuation runs too.
2. A gate stopped during an outage exits without waiting for journald and names on stderr the
   decisions journald did not get.
3. With "journal": false nothing at all reaches the namespace's journald.

Run as root:

    SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_journald_restart.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gate import (enforce_policy, JOURNAL_SOCKET, JOURNALD, Gate, Journal, UnixHTTP,  # noqa: F401
                  check_journal_entry, poll, signgated, simple_package)

RELAY_BATCH = 250              # GATE_RELAY_BATCH in daemon/journal_relay.h
CATCH_UP_TIMEOUT = 120.0       # a backlog of a few hundred takes a few paced seconds
OUTAGE_NOTICE = "journald did not take decision seq"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

NS_SETUP = r"""
set -e
mount -t tmpfs -o size=32m,mode=0755 tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
if [ -d /var/log/journal ]; then
  mount -t tmpfs -o size=32m,mode=2755 tmpfs /var/log/journal
fi
echo ready
exec sleep infinity
"""

GATE_WRAPPER = """#!/bin/sh
# signgated inside the test's mount namespace (the one with the private journald).
exec nsenter "--mount=/proc/$SGT_NS_PID/ns/mnt" -- "$SGT_SIGNGATED" "$@"
"""


# --------------------------------------------------------------------------
# the namespace and its journald

class PrivateJournald(Journal):
    """A mount namespace with its own journald; see the module docstring."""

    def __init__(self, log_dir: Path):
        for tool in ("unshare", "nsenter", "journalctl"):
            if not shutil.which(tool):
                pytest.fail("%s (util-linux / systemd) is needed for this test" % tool, pytrace=False)
        if not os.access(JOURNALD, os.X_OK):
            pytest.fail("%s is needed for this test" % JOURNALD, pytrace=False)
        self.log_dir = log_dir
        self.proc = None
        self.starts = 0
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", NS_SETUP],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            self.holder.kill()
            _, err = self.holder.communicate(timeout=30)
            pytest.fail("could not set up the private mount namespace: %r" % err.decode(errors="replace"),
                        pytrace=False)

    @property
    def ns(self) -> str:
        return "--mount=/proc/%d/ns/mnt" % self.holder.pid

    @property
    def socket_path(self) -> str:
        """The namespace's journald socket, reached from outside it."""
        return "/proc/%d/root/run/systemd/journal/socket" % self.holder.pid

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "private journald already running"
        self.starts += 1
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
        with open(self.log_dir / ("journald-%d.log" % self.starts), "wb") as log:
            self.proc = subprocess.Popen(["nsenter", self.ns, "--", JOURNALD], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env, start_new_session=True)
        assert poll(self.up, 20, 0.05), "the private journald did not open its socket"
        assert self.barrier(), "the private journald accepts entries but journalctl does not show them"

    def stop(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(60)

    def up(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect(self.socket_path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    @property
    def command(self) -> tuple:
        return ("nsenter", self.ns, "--")

    def decision_entries(self) -> list:
        """The gate's decision entries, in journal order."""
        return [e for e in self.query("SYSLOG_IDENTIFIER=signgated") if "SIGNGATE_DECISION_ID" in e]

    def close(self) -> None:
        for p in (self.proc, self.holder):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(30)
        if self.holder.stdout:
            self.holder.stdout.close()
        if self.holder.stderr:
            self.holder.stderr.close()


@pytest.fixture
def world(tmp_path, signgated, monkeypatch):
    """(PrivateJournald already started, a Gate whose daemon runs in its namespace, not started)."""
    pj = PrivateJournald(tmp_path)
    wrapper = tmp_path / "signgated-in-ns.sh"
    wrapper.write_text(GATE_WRAPPER)
    wrapper.chmod(0o755)
    monkeypatch.setenv("SGT_NS_PID", str(pj.holder.pid))
    monkeypatch.setenv("SGT_SIGNGATED", signgated)
    root = tmp_path / "root"
    root.mkdir()
    g = Gate(str(wrapper), root)
    try:
        pj.start()
        yield pj, g
    finally:
        try:
            g.close()
        finally:
            pj.close()
        assert os.path.exists(JOURNAL_SOCKET), "the shared journald's socket is gone"


# --------------------------------------------------------------------------
# helpers


def upload(g: Gate, function: str, data: bytes):
    c = UnixHTTP(g.root / "run/signgate/api.sock", 60)
    try:
        c.request("PUT", "/v1/functions/%s/code" % function, body=data)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def stop_cleanly(g: Gate) -> None:
    rc = g.stop()
    assert rc == 0, "signgated exited %s on SIGTERM\n%s" % (rc, g.stderr_tail(6000))
    text = g.stderr_text(all_starts=True)
    found = [m for m in SANITIZER_MARKERS if m in text]
    assert not found, "sanitizer report(s) %s in signgated's stderr:\n%s" % (found, text[-6000:])


def outage_notices(g: Gate) -> list:
    return [l for l in g.stderr_text().splitlines() if OUTAGE_NOTICE in l]


def decide_mixed(g: Gate, signer, fn: str, tag: str) -> list:
    """Two promotions and two rejections from the inbox, and one promotion through the API."""
    recs = [
        g.decide("%s@%s-good1.zip" % (fn, tag), signer.sign_bytes(simple_package(), fn + ".zip")),
        g.decide("%s@%s-bad1.zip" % (fn, tag), simple_package()),
        g.decide("%s@%s-good2.zip" % (fn, tag), signer.sign_bytes(simple_package(), fn + ".zip")),
        g.decide("%s@%s-bad2.zip" % (fn, tag), simple_package()),
    ]
    status, rec = upload(g, fn, signer.sign_bytes(simple_package(), fn + ".zip"))
    assert status == 200, (status, rec)
    recs.append(rec)
    assert [r["outcome"] for r in recs] == ["promoted", "rejected", "promoted", "rejected", "promoted"], (
        [(r["outcome"], r["message"]) for r in recs])
    return recs


def wait_in_journal(pj: PrivateJournald, g: Gate, ids, what: str) -> list:
    ids = set(ids)
    got = poll(lambda: ids <= {e["SIGNGATE_DECISION_ID"] for e in pj.decision_entries()} or None,
               CATCH_UP_TIMEOUT, 0.2)
    if not got:
        have = {e["SIGNGATE_DECISION_ID"] for e in pj.decision_entries()}
        pytest.fail("%d of %d decisions (%s) not in the private journal within %ss\n%s"
                    % (len(ids - have), len(ids), what, CATCH_UP_TIMEOUT, g.stderr_tail()))
    assert pj.barrier(), "private journald barrier failed"
    return pj.decision_entries()


def check_journal_matches_audit(pj: PrivateJournald, g: Gate, replayed_ids: set) -> list:
    """Exactly one entry per decision, in audit order; the replayed ones marked, the rest not."""
    decisions = g.decisions()
    entries = pj.decision_entries()
    want = [r["decisionId"] for r in decisions]
    got = [e["SIGNGATE_DECISION_ID"] for e in entries]
    if got != want:
        dups = sorted({d for d in got if got.count(d) > 1})
        pytest.fail("journal entries are not one per decision in audit order: %d entries, %d decisions; "
                    "missing %s; duplicated %s; first difference at %s"
                    % (len(got), len(want), sorted(set(want) - set(got))[:5], dups[:5],
                       next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))))
    for rec, e in zip(decisions, entries):
        check_journal_entry(e, rec, pid=g.pid)
        assert e.get("SIGNGATE_SEQ") == str(rec["seq"]), (e.get("SIGNGATE_SEQ"), rec["seq"])
        want_mark = "1" if rec["decisionId"] in replayed_ids else None
        assert e.get("SIGNGATE_REPLAYED") == want_mark, (
            "decision seq %d (%s): SIGNGATE_REPLAYED=%r, want %r"
            % (rec["seq"], rec["outcome"], e.get("SIGNGATE_REPLAYED"), want_mark))
    return entries


# --------------------------------------------------------------------------
# 1. outage and recovery

@pytest.mark.parametrize("how", ["sigkill", "sigterm-and-remove-socket"])
def test_decisions_made_while_journald_is_down_reach_it_once_in_order_when_it_is_back(
        how, world, signer, run):
    pj, g = world
    fn = "jr"
    g.write_policy(enforce_policy(signer, fn))
    g.start()

    # Before the outage: sent as they are made, not marked.
    before = decide_mixed(g, signer, fn, "before")
    wait_in_journal(pj, g, [r["decisionId"] for r in before], "before the outage")
    assert not outage_notices(g), g.stderr_tail()

    # The outage.
    if how == "sigkill":
        pj.stop(signal.SIGKILL)
        assert os.path.exists(pj.socket_path), "journald's socket should stay behind a SIGKILL"
    else:
        pj.stop(signal.SIGTERM)
        os.unlink(pj.socket_path)
    assert not pj.up()

    during = decide_mixed(g, signer, fn, "during")
    if how == "sigkill":
        # A backlog longer than one replay batch: unsigned drops, rejected.
        names = ["%s@bulk-%03d.zip" % (fn, i) for i in range(RELAY_BATCH + 10)]
        for n in names:
            g.drop(n, simple_package())
        bulk = g.wait_records(names, timeout=300)
        assert {r["outcome"] for r in bulk.values()} == {"rejected"}
        g.wait_idle()
        during += sorted(bulk.values(), key=lambda r: r["seq"])
    # The gate kept deciding: every one of these was made while nobody listened.
    assert not pj.up(), "journald came back on its own"
    assert poll(lambda: len(outage_notices(g)) >= 1, 10), "no stderr line about the outage\n" + g.stderr_tail()
    first = min(r["seq"] for r in during)
    notices = outage_notices(g)
    assert len(notices) == 1 and ("seq %d " % first) in notices[0], notices
    # Let the relay's retries (after 1 s, then 2 s) meet a journald that is still away; nothing
    # below depends on how many there were.
    time.sleep(2.5)

    # journald is back: the relay catches up from the audit file.
    restarted = time.monotonic()
    pj.start()
    wait_in_journal(pj, g, [r["decisionId"] for r in during], "made during the outage")
    caught_up = time.monotonic() - restarted
    entries = check_journal_matches_audit(pj, g, {r["decisionId"] for r in during})

    events = [e for e in pj.query("SYSLOG_IDENTIFIER=signgated") if "SIGNGATE_REPLAYED_COUNT" in e]
    assert len(events) == 1, events
    ev = events[0]
    assert ev["SIGNGATE_REPLAYED_COUNT"] == str(len(during)), ev
    assert ev["SIGNGATE_REPLAYED_FIRST_SEQ"] == str(first), ev
    assert ev["SIGNGATE_REPLAY_LOST"] == "0", ev
    assert "journald is back after an outage of" in ev["MESSAGE"], ev["MESSAGE"]
    # The event follows the last replayed decision.
    all_entries = pj.query("SYSLOG_IDENTIFIER=signgated")
    order = ["EVENT" if "SIGNGATE_REPLAYED_COUNT" in e else e.get("SIGNGATE_DECISION_ID") for e in all_entries]
    assert order.index("EVENT") > order.index(during[-1]["decisionId"]), "the closing event came too early"

    # Live again: the next decision is sent as it is made, unmarked.
    after = g.decide("%s@after.zip" % fn, signer.sign_bytes(simple_package(), fn + ".zip"))
    wait_in_journal(pj, g, [after["decisionId"]], "after the recovery")
    check_journal_matches_audit(pj, g, {r["decisionId"] for r in during})
    assert len(outage_notices(g)) == 1, outage_notices(g)

    # Nothing of this went to the shared journal.
    shared = Journal()
    for rec in (before[0], during[0], after):
        assert shared.query("SIGNGATE_DECISION_ID=" + rec["decisionId"]) == [], rec["decisionId"]

    run(["audit", "verify", *g.audit_files()], check=0)
    stop_cleanly(g)
    print("\n%s: %d decisions made during the outage, replayed %.2f s after journald restarted "
          "(outage %s ms by the gate's clock); %d entries in all"
          % (how, len(during), caught_up, ev["SIGNGATE_OUTAGE_MSEC"], len(entries) + 1))


# --------------------------------------------------------------------------
# 2. stopped during an outage

def test_gate_stopped_during_an_outage_exits_and_names_what_journald_missed(world, signer, run):
    pj, g = world
    fn = "jrstop"
    g.write_policy(enforce_policy(signer, fn))
    g.start()
    live = g.decide(fn + "@live.zip", signer.sign_bytes(simple_package(), fn + ".zip"))
    wait_in_journal(pj, g, [live["decisionId"]], "before the outage")

    pj.stop(signal.SIGKILL)
    missed = [g.decide(fn + "@m1.zip", simple_package()),
              g.decide(fn + "@m2.zip", signer.sign_bytes(simple_package(), fn + ".zip"))]
    stop_cleanly(g)
    want = "exiting with decisions seq %d–%d not sent to journald" % (missed[0]["seq"], missed[1]["seq"])
    assert want in g.stderr_text(), "no %r on stderr\n%s" % (want, g.stderr_tail())
    run(["audit", "verify", *g.audit_files()], check=0)


# --------------------------------------------------------------------------
# 3. journal: false

def test_journal_false_sends_nothing_to_journald(world, signer):
    pj, g = world
    fn = "jroff"
    g.write_policy(enforce_policy(signer, fn))
    g.write_settings({"journal": False})
    g.start()
    recs = [g.decide(fn + "@a.zip", signer.sign_bytes(simple_package(), fn + ".zip")),
            g.decide(fn + "@b.zip", simple_package())]
    err = g.stderr_text()
    for r in recs:
        assert "[%d] %s %s" % (r["seq"], r["decisionId"], r["outcome"]) in err, g.stderr_tail()
    assert pj.barrier(), "private journald barrier failed"
    assert pj.query("SYSLOG_IDENTIFIER=signgated") == [], "journal: false, yet the gate wrote to journald"
    stop_cleanly(g)
    assert pj.barrier()
    assert pj.query("SYSLOG_IDENTIFIER=signgated") == [], "journal: false, yet the gate wrote to journald"
