"""srtpbridge --explain on every offer fixture (tests/unit/data/sdp/offers):
the text output, every line of both legs' SDP, against a reviewed golden
file; the JSON output against the text; no key of the offer ever printed;
and a round trip: what goes to the plain IVR, offered back toward the
carrier, keeps its codecs.

SRTPBRIDGE_UPDATE_GOLDEN=1 rewrites the golden files (review the diff)."""

import base64
import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import binary, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OFFERS = os.path.join(harness.SOURCE_DIR, "tests", "unit", "data", "sdp", "offers")
GOLDEN = os.path.join(HERE, "golden", "explain")
CONFIG = os.path.join(HERE, "data", "explain.ini")


def fixtures():
    return sorted(f for f in os.listdir(OFFERS) if f.endswith(".sdp"))


def trunk_for(name):
    """Plain offers come from the IVR; everything else from the carrier."""
    return "ivr" if name.startswith("ivr-") else "carrier"


def explain(path, trunk, *extra):
    return run([binary(), "--explain", "-c", CONFIG, "--trunk", trunk, *extra, path], timeout=30)


def offered_keys(sdp):
    """Every inline key of the offer, decoded: none may appear in any output."""
    return [m.group(1) for m in re.finditer(r"inline:([A-Za-z0-9+/=]{16,})", sdp)]


def codecs(sdp):
    """The m= format lists and the rtpmap/fmtp lines, in order."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    return ([l.split(" ", 3)[3] for l in lines if l.startswith("m=") and len(l.split(" ")) > 3],
            [l for l in lines if l.startswith(("a=rtpmap:", "a=fmtp:"))])


class ExplainFixturesTest(unittest.TestCase):
    def test_fixtures_exist(self):
        self.assertGreaterEqual(len(fixtures()), 10)

    def test_text_against_golden(self):
        update = os.environ.get("SRTPBRIDGE_UPDATE_GOLDEN") == "1"
        for name in fixtures():
            with self.subTest(fixture=name):
                path = os.path.join(OFFERS, name)
                r = explain(path, trunk_for(name))
                self.assertIn(r.returncode, (0, 1), r.stderr)
                self.assertEqual(r.stderr, "")
                golden = os.path.join(GOLDEN, name[:-4] + ".txt")
                if update:
                    os.makedirs(GOLDEN, exist_ok=True)
                    with open(golden, "w", encoding="utf-8") as f:
                        f.write(r.stdout)
                with open(golden, encoding="utf-8") as f:
                    want = f.read()
                self.assertEqual(r.stdout.splitlines(), want.splitlines(),
                                 "--explain %s differs from %s" % (name, golden))
                self.assertEqual(r.returncode == 0, "result: accepted" in r.stdout)

    def test_json_matches_text_and_hides_keys(self):
        for name in fixtures():
            with self.subTest(fixture=name):
                path = os.path.join(OFFERS, name)
                with open(path, encoding="utf-8", newline="") as f:
                    offer = f.read()
                r = explain(path, trunk_for(name), "--json")
                self.assertIn(r.returncode, (0, 1), r.stderr)
                doc = json.loads(r.stdout)
                self.assertEqual(doc["accepted"], r.returncode == 0)
                self.assertEqual(doc["route"]["from"], trunk_for(name))
                text = explain(path, trunk_for(name)).stdout
                if doc["accepted"]:
                    self.assertEqual(doc["status"], 200)
                    for key in ("sdp_to_routed", "sdp_answer", "sdp_to_offerer"):
                        self.assertTrue(doc[key].startswith("v=0\r\no=- "), key)
                        self.assertTrue(doc[key].endswith("\r\n"), key)
                    side = doc["offerer"]
                    if side["srtp"]:
                        self.assertIn("SRTP %s" % side["suite"], text)
                else:
                    self.assertIn("refused with %d: %s" % (doc["status"], doc["reason"]),
                                  text)
                for k in offered_keys(offer):
                    self.assertNotIn(k, r.stdout, "an offered key was printed")
                    self.assertNotIn(k[:12], text)
                self.assertNotIn("inline:" + "A" * 4, r.stdout)
                for m in re.finditer(r"inline:(\S+)", r.stdout):
                    self.assertTrue(m.group(1).startswith("[redacted]"), m.group(0))

    def test_round_trip_keeps_codecs(self):
        for name in fixtures():
            if trunk_for(name) != "carrier":
                continue
            with self.subTest(fixture=name):
                path = os.path.join(OFFERS, name)
                r = explain(path, "carrier", "--json")
                doc = json.loads(r.stdout)
                if not doc["accepted"]:
                    continue
                with open(path, encoding="utf-8", newline="") as f:
                    offer = f.read()
                plain = doc["sdp_to_routed"]
                self.assertNotIn("a=crypto", plain)
                self.assertNotIn("SAVP", plain)
                # ... and the plain SDP offered back toward the carrier
                with tempfile.NamedTemporaryFile("w", suffix=".sdp", newline="",
                                                 delete=False) as f:
                    f.write(plain)
                try:
                    back = json.loads(explain(f.name, "ivr", "--json").stdout)
                finally:
                    os.unlink(f.name)
                self.assertTrue(back["accepted"], back.get("reason"))
                secure = back["sdp_to_routed"]
                self.assertIn("RTP/SAVP", secure)
                self.assertIn("a=crypto:1 ", secure)
                fmts_in, maps_in = codecs(offer)
                fmts_out, maps_out = codecs(secure)
                audio = [f for f, l in zip(fmts_in, offer.split("m=")[1:])
                         if l.startswith("audio") and not l.startswith("audio 0 ")]
                self.assertEqual([fmts_out[0]], audio[:1])
                for line in maps_out:
                    self.assertIn(line, maps_in)


if __name__ == "__main__":
    unittest.main(verbosity=2)
