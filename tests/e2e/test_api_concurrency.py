"""Concurrent API uploads and inbox drops: every upload answered once, every package decided
once, no crash.

A regression test for a use-after-free: answering one upload resumes its connection and runs
libmicrohttpd, which may accept and dispatch the next upload from inside the finished job's
completion; the finished job must already be off its queue by then.
"""

import json
import threading
from collections import Counter

from gate import UnixHTTP, enforce_policy, gate, journald, signgated  # noqa: F401
from test_gate_inbox import simple_package



def test_concurrent_uploads_and_inbox_drops_each_get_one_record(gate, signer):
    functions = ["conc%d" % i for i in range(6)]
    g = gate(policy=enforce_policy(signer, *functions[:3]))  # conc3..5 undeclared: UNKNOWN_FUNCTION
    sock = str(g.root / "run/signgate/api.sock")
    signed = signer.sign_bytes(simple_package(), "conc.zip")
    unsigned = simple_package()
    jobs = [(functions[i % 6], signed if i % 2 == 0 else unsigned) for i in range(160)]
    answers, lock = [], threading.Lock()

    def client(k):
        for fn, body in jobs[k::8]:
            c = UnixHTTP(sock, 120)
            try:
                c.request("PUT", "/v1/functions/%s/code" % fn, body=body)
                r = c.getresponse()
                data = json.loads(r.read())
                rec = data if r.status == 200 else data.get("Decision")
                got = (r.status, rec["decisionId"] if rec else None)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                got = (type(e).__name__, None)
            finally:
                c.close()
            with lock:
                answers.append((fn, got))

    # Inbox drops for the same functions while the uploads run: both sources share the queues.
    drops = ["%s@drop%d.zip" % (functions[i % 6], i) for i in range(40)]

    def dropper():
        for i, name in enumerate(drops):
            g.drop(name, signed if i % 2 == 0 else unsigned)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)] + [threading.Thread(target=dropper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = Counter(s for _, (s, _) in answers)
    assert set(statuses) <= {200, 403}, "uploads not answered with a decision: %s\n%s" % (statuses, g.stderr_tail())
    assert len(answers) == len(jobs)
    ids = [i for _, (_, i) in answers]
    assert len(set(ids)) == len(jobs), "a decision id was answered twice"
    dropped = g.wait_records(drops)
    assert all(len([r for r in g.decisions() if r["package"]["name"] == n]) == 1 for n in drops), (
        "an inbox drop was decided more or less than once")
    assert {r["outcome"] for r in dropped.values()} <= {"promoted", "rejected"}
    g.wait_idle()
    recorded = Counter(r["decisionId"] for r in g.decisions() if r.get("source") == "api")
    assert set(recorded) == set(ids) and all(c == 1 for c in recorded.values()), (
        "each upload must have exactly one record")
    assert g.running(), "signgated died under concurrent uploads\n" + g.stderr_tail()
    assert g.staging_entries() == [], "staging not empty: %s" % g.staging_entries()
