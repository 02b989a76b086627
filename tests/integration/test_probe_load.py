"""srtpprobe load through the daemon: many SRTP calls at once on one probe,
each with real 20 ms pacing, against one srtpprobe answer as the IVR (the
soak tests' and benchmarks' driver, docs/srtpprobe.md). A short run that
checks the tool and the daemon together, not a benchmark: every call must be
answered and be two-way audio with no decrypt failure; loss and jitter are
machine-dependent and only reported (bench/ and docs/srtpprobe.md have
figures). Skipped when srtpprobe is not built."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import probe  # noqa: E402
from harness import run  # noqa: E402
from test_probe_matrix import ProbeMatrixCase  # noqa: E402

CALLS = 40


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class LoadTest(ProbeMatrixCase):
    def test_forty_concurrent_srtp_calls(self):
        answerer, plain = self.answerer("--srtp", "off")
        self.b.trunk("carrier", plain, route="ivr")
        self.b.trunk("ivr", plain, srtp="off")
        self.b.start(calls=CALLS)
        r = run([harness.binary("srtpprobe"), "load", "--json", "--to",
                 self.b.uri("100", "carrier"), "--calls", str(CALLS), "--rate", "20",
                 "--duration", "3"], timeout=90)
        rep = json.loads(r.stdout)
        msg = "%s\n%s" % (probe.describe(rep), r.stderr[-2000:])
        self.assertEqual(rep["role"], "load", msg)
        self.assertEqual(rep["calls_attempted"], CALLS, msg)
        self.assertEqual(rep["calls_answered"], CALLS, msg)
        self.assertEqual(rep["calls_failed"], 0, msg)
        self.assertEqual(rep["verdicts"], {"two-way audio": CALLS}, msg)
        self.assertEqual(rep["decrypt_failures"], 0, msg)
        # 50 packets a second each way per call, 3 s at least
        self.assertGreater(rep["tx_packets"], CALLS * 150, msg)
        self.assertGreater(rep["rx_packets"], CALLS * 140, msg)
        self.assertIn(r.returncode, (0, 1), msg)  # 1: loss over 0.1 % on a busy machine
        if r.returncode:
            self.assertGreater(rep["loss_pct"], 0.1, msg)
        print("\nload: %d calls, loss %.3f %%, jitter p50/p99 %.1f/%.1f ms, RTT p50/p99 "
              "%s/%s ms, setup p50/p99 %s/%s ms" %
              (CALLS, rep["loss_pct"], rep["jitter_ms_p50"], rep["jitter_ms_p99"],
               rep["rtt_ms_p50"], rep["rtt_ms_p99"], rep["setup_ms_p50"], rep["setup_ms_p99"]),
              file=sys.stderr)
        # every call reached the IVR and was heard there
        reps = answerer.wait_reports(CALLS)
        self.assertEqual(sorted(x["heard"]["tone"] for x in reps), ["A"] * CALLS)
        # and the daemon let every call go
        out = self.b.ctl("calls")
        self.assertEqual(out["calls"], [], out)


if __name__ == "__main__":
    harness.main()
