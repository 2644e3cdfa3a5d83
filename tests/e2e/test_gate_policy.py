"""signgated's policy store reloads (SIGHUP) and settings check (DESIGN §7).

Run: SIGNGATE_BIN=… SIGNGATED_BIN=… /usr/bin/python3 -m pytest -q tests/e2e/test_gate_policy.py
"""

import json
import subprocess

import pytest

from gate import (Policy, check_journal, gate, journald, poll, signgated,  # noqa: F401
                  simple_package, write_atomic)


def test_sighup_binding_a_function_to_an_enforce_csc_makes_unsigned_packages_rejected(
        gate, signer):
    pol = Policy()
    csc = pol.csc("Enforce", signer)
    pol.function("hupfn")  # declared, no code signing config
    g = gate(settings={"unboundFunctions": "allow"}, policy=pol)
    before = g.decide("hupfn@1.zip", simple_package())
    assert (before["outcome"], before["codeSigningConfig"]) == ("promoted", None), before["message"]

    pol.function("hupfn", csc)
    g.write_policy(pol)
    g.hup()
    after = g.decide("hupfn@2.zip", simple_package())
    assert (after["outcome"], after["reasons"], after["codeSigningConfig"], after["policy"]) == (
        "rejected", ["UNSIGNED"], csc, "Enforce"), after["message"]
    signed = g.decide("hupfn@3.zip", signer.sign_bytes(simple_package(), "hupfn.zip"))
    assert (signed["outcome"], signed["codeSigningConfig"]) == ("promoted", csc), signed["message"]
    assert g.current_release("hupfn") == signed["release"]
    check_journal(g, [before, after, signed])


def test_bad_policy_file_on_sighup_keeps_the_old_policy_and_is_reported(gate, signer, journald):
    pol = Policy()
    csc = pol.csc("Enforce", signer)
    pol.function("keep", csc)
    g = gate(settings={"unboundFunctions": "allow"}, policy=pol)
    base = g.decide("keep@1.zip", simple_package())
    assert (base["outcome"], base["reasons"]) == ("rejected", ["UNSIGNED"]), base["message"]

    # A valid change (unbind keep) together with a broken file: nothing of it may apply.
    pol.function("keep")
    g.write_policy(pol)
    write_atomic(g.policy_dir / "functions" / "broken.json", b"{")
    g.hup()
    assert g.running(), "the gate died on a bad policy file\n" + g.stderr_tail()
    still = g.decide("keep@2.zip", simple_package())
    assert (still["outcome"], still["reasons"], still["codeSigningConfig"]) == (
        "rejected", ["UNSIGNED"], csc), "the bad reload changed the policy: " + still["message"]
    ok = g.decide("keep@3.zip", signer.sign_bytes(simple_package(), "keep.zip"))
    assert ok["outcome"] == "promoted", ok["message"]

    assert poll(lambda: "broken.json" in g.stderr_text(), 10), (
        "stderr does not report the bad file\n" + g.stderr_tail())
    reported = poll(lambda: [e for e in journald.query("_PID=%d" % g.pid)
                             if "broken.json" in (e.get("MESSAGE") or "")], 10, 0.2)
    assert reported, "no journald entry of the daemon names functions/broken.json"

    # Fixed: the next reload applies the (valid) change.
    (g.policy_dir / "functions" / "broken.json").unlink()
    g.hup()
    now = g.decide("keep@4.zip", simple_package())
    assert (now["outcome"], now["codeSigningConfig"]) == ("promoted", None), now["message"]


# --------------------------------------------------------------------------
# --check-config and --version

def check_config(signgated, root, text):
    cfg = root / "etc" / "signgate" / "signgated.json"
    if text is not None:
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(text)
    return subprocess.run([signgated, "--root", str(root), "--check-config"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


GOOD_SETTINGS = {
    "unboundFunctions": "allow",
    "limits": {"packageBytes": 1 << 20, "inflatedBytes": 1 << 22, "entries": 100,
               "nameBytes": 200, "depth": 8},
    "retainReleases": 3,
    "journal": False,
    "hook": {"argv": ["/bin/true", "x"], "timeoutSeconds": 5},
    "audit": {"rotateBytes": 1 << 20, "keepFiles": 4},
}


@pytest.mark.parametrize("text", [None, "{}", json.dumps(GOOD_SETTINGS)],
                         ids=["no-file", "empty-object", "every-key"])
def test_check_config_accepts_good_settings_with_exit_0(signgated, tmp_path, text):
    p = check_config(signgated, tmp_path, text)
    assert p.returncode == 0, "exit %d\nstderr: %s" % (p.returncode, p.stderr)


@pytest.mark.parametrize("text,key", [
    ('{"retainReleases": "five"}', "retainReleases"),
    ('{"unboundFunctions": "maybe"}', "unboundFunctions"),
    ('{"limits": {"entries": 0}}', "entries"),
    ('{"bogusKey": 1}', "bogusKey"),
    ('{"journal": "yes"}', "journal"),
    ('{"hook": {"argv": "not-a-list"}}', "hook"),
    ('{"audit": {"rotateBytes": "big"}}', "rotateBytes"),
    ('{"retainReleases": 5,', None),
], ids=["retain-type", "unbound-value", "limit-range", "unknown-key", "journal-type",
        "hook-argv", "audit-rotate", "not-json"])
def test_check_config_rejects_bad_settings_with_one_line_naming_file_and_key(
        signgated, tmp_path, text, key):
    p = check_config(signgated, tmp_path, text)
    assert p.returncode == 1, "exit %d for %s\nstderr: %s" % (p.returncode, text, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "want exactly one stderr line: %r" % p.stderr
    assert "etc/signgate/signgated.json" in lines[0], lines[0]
    if key:
        assert key in lines[0], "the line does not name the key %s: %r" % (key, lines[0])


def test_version_prints_the_version_and_exits_0(signgated):
    p = subprocess.run([signgated, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("signgated "), (p.returncode, p.stdout)


LAYOUT = ["etc/signgate", "var/lib/signgate/policy", "var/lib/signgate/staging",
          "var/lib/signgate/runtime/functions", "var/lib/signgate/runtime/layers",
          "var/spool/signgate/inbox", "var/spool/signgate/rejected", "var/log/signgate",
          "run/signgate"]


def test_start_on_an_empty_root_creates_the_layout_sends_ready_and_stops_on_sigterm(gate):
    g = gate(settings=None, start=False)
    g.start()                                    # waits for READY=1
    missing = [d for d in LAYOUT if not (g.root / d).is_dir()]
    assert not missing, "directories not created: %s" % missing
    rc = g.stop()
    assert rc == 0, "exit %s on SIGTERM\n%s" % (rc, g.stderr_tail())
    assert any(n.get("STOPPING") == "1" for n in g.notes[g.stop_since:]), g.notes
    # a second start on the same root works (nothing left behind blocks it)
    g.start()
    assert g.stop() == 0
