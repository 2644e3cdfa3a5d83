"""The journal catalog (contrib/systemd/signgate.catalog) against the real journalctl.

journalctl compiles the catalog into a database under a private root (``--root``), the way
``journalctl --update-catalog`` does on an installed host, and must then list one entry per
MESSAGE_ID that signgated sends (audit/sg_journal.h), each with the Subject the file gives.
A syntax error in the catalog makes journalctl skip entries or fail, which these tests catch.

The source tree comes from ``SIGNGATE_SOURCE_DIR`` (ctest sets it), else two levels up from
this file. Needs no signgate binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("SIGNGATE_SOURCE_DIR") or Path(__file__).resolve().parents[2])
CATALOG = SOURCE_DIR / "contrib" / "systemd" / "signgate.catalog"
HEADER = SOURCE_DIR / "audit" / "sg_journal.h"

# The fixed MESSAGE_IDs (sg_journal.h): operators' filters and this catalog depend on them.
MESSAGE_IDS = {
    "SG_MESSAGE_PROMOTED": "9c444b10f5004e57afb59ee4fb12d679",
    "SG_MESSAGE_WARNED": "671a8ffbbf084b31be51bc66e082fee0",
    "SG_MESSAGE_REJECTED": "a5f2a1252c59449eb147f4a6a008286d",
    "SG_MESSAGE_DENIED": "6f07fe6d1a54484983f7247d12c68395",
    "SG_MESSAGE_POLICY_BAD": "a18df1bffc7243e990dd9d8f25101edb",
    "SG_MESSAGE_STARTED": "ddb5dec857bb42d2b20fd7707ec63be9",
    "SG_MESSAGE_STOPPED": "4a0e31196d2f4545ac9569f312a4f964",
    "SG_MESSAGE_INTERNAL": "742e36cfcbc04555a4d4d7ecb4917095",
}


def catalog_entries() -> dict[str, dict]:
    """ID -> {"headers": [(key, value)], "body": str}, parsed from the catalog source."""
    entries: dict[str, dict] = {}
    current = None
    in_headers = False
    for line in CATALOG.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"-- ([0-9a-f]{32})", line)
        if m:
            current = entries.setdefault(m.group(1), {"headers": [], "body": ""})
            in_headers = True
            continue
        if current is None:
            continue
        if in_headers:
            if line == "":
                in_headers = False
                continue
            key, sep, value = line.partition(": ")
            assert sep, f"catalog header line without 'Key: value': {line!r}"
            current["headers"].append((key, value))
        else:
            current["body"] += line + "\n"
    return entries


@pytest.fixture(scope="module")
def journalctl() -> str:
    path = shutil.which("journalctl")
    if not path:
        pytest.skip("journalctl is not installed (Debian package systemd)")
    return path


@pytest.fixture(scope="module")
def catalog_root(journalctl, tmp_path_factory) -> Path:
    """A private root whose catalog database journalctl built from our catalog file alone."""
    root = tmp_path_factory.mktemp("catalog-root")
    catdir = root / "usr" / "lib" / "systemd" / "catalog"
    catdir.mkdir(parents=True)
    shutil.copy(CATALOG, catdir / "signgate.catalog")
    r = subprocess.run([journalctl, f"--root={root}", "--update-catalog"], capture_output=True, text=True)
    assert r.returncode == 0, f"journalctl --update-catalog failed ({r.returncode}):\n{r.stderr}"
    # journalctl reports parse problems on stderr but still exits 0.
    assert "signgate.catalog" not in r.stderr, f"journalctl complained about the catalog:\n{r.stderr}"
    return root


def run_journalctl(journalctl: str, root: Path, *args: str) -> str:
    r = subprocess.run([journalctl, f"--root={root}", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"journalctl {' '.join(args)} failed ({r.returncode}):\n{r.stderr}"
    return r.stdout


def test_header_defines_exactly_the_fixed_message_ids():
    text = HEADER.read_text(encoding="utf-8")
    defined = dict(re.findall(r'#define (SG_MESSAGE_[A-Z_]+)\s+"([0-9a-f]{32})"', text))
    assert defined == MESSAGE_IDS


def test_catalog_source_has_one_entry_per_message_id_with_required_headers():
    entries = catalog_entries()
    assert set(entries) == set(MESSAGE_IDS.values())
    for mid, e in entries.items():
        keys = [k for k, _ in e["headers"]]
        assert keys.count("Subject") == 1, f"{mid}: needs exactly one Subject"
        assert ("Defined-By", "signgate") in e["headers"], f"{mid}: needs Defined-By: signgate"
        assert "Support" in keys, f"{mid}: needs a Support line"
        docs = [v for k, v in e["headers"] if k == "Documentation"]
        assert "man:signgated(8)" in docs or "file:///usr/share/doc/signgate/operations.md" in docs, mid
        assert len(e["body"].split()) >= 30, f"{mid}: the body should explain the event to an operator"


def test_journalctl_lists_all_eight_ids_with_their_subjects(journalctl, catalog_root):
    listed = {}
    for line in run_journalctl(journalctl, catalog_root, "--list-catalog").splitlines():
        mid, _, rest = line.partition(" ")
        listed[mid] = rest
    subjects = {mid: dict(e["headers"])["Subject"] for mid, e in catalog_entries().items()}
    for name, mid in MESSAGE_IDS.items():
        assert mid in listed, f"{name} ({mid}) is not in journalctl --list-catalog:\n{listed}"
        assert listed[mid] == f"signgate: {subjects[mid]}", f"{name}: listed as {listed[mid]!r}"
    assert len([m for m in listed if m in MESSAGE_IDS.values()]) == 8


def test_every_substitution_is_one_journalctl_can_make(journalctl, catalog_root):
    """journalctl -x replaces @NAME@ only when NAME is capital letters and '_': a digit (as in
    SIGNGATE_SHA384) leaves the text as it is."""
    for name, mid in MESSAGE_IDS.items():
        text = run_journalctl(journalctl, catalog_root, "--dump-catalog", mid)
        for var in re.findall(r"@([A-Za-z0-9_]+)@", text):
            assert re.fullmatch(r"[A-Z_]+", var), f"{name}: @{var}@ cannot be substituted by journalctl"


def test_decision_entries_substitute_the_fields_signgated_sends(journalctl, catalog_root):
    """The @FIELD@ names in the decision entries are fields sg_journal_fields() really sends."""
    sent = {
        "SIGNGATE_DECISION_ID", "SIGNGATE_FUNCTION", "SIGNGATE_KIND", "SIGNGATE_OUTCOME",
        "SIGNGATE_REASONS", "SIGNGATE_SHA384", "SIGNGATE_PROFILE", "SIGNGATE_PROFILE_VERSION",
        "SIGNGATE_JOB_ID", "SIGNGATE_CSC", "SIGNGATE_SOURCE", "SIGNGATE_PEER_UID",
        "SIGNGATE_RELEASE", "SIGNGATE_SEQ",
    }
    for name in ("SG_MESSAGE_PROMOTED", "SG_MESSAGE_WARNED", "SG_MESSAGE_REJECTED"):
        text = run_journalctl(journalctl, catalog_root, "--dump-catalog", MESSAGE_IDS[name])
        used = set(re.findall(r"@([A-Z0-9_]+)@", text))
        assert "SIGNGATE_FUNCTION" in used, name
        assert used <= sent, f"{name} uses fields nobody sends: {sorted(used - sent)}"
    rejected = run_journalctl(journalctl, catalog_root, "--dump-catalog", MESSAGE_IDS["SG_MESSAGE_REJECTED"])
    assert "/var/spool/signgate/rejected/@SIGNGATE_FUNCTION@/@SIGNGATE_DECISION_ID@" in rejected
    for reason in ("MALFORMED", "LIMIT_EXCEEDED", "UNSAFE_CONTENT", "INTEGRITY", "UNKNOWN_FUNCTION",
                   "UNSIGNED", "UNTRUSTED_PUBLISHER", "EXPIRED", "NOT_YET_VALID", "REVOKED"):
        assert reason in rejected, f"the rejected entry does not explain {reason}"
