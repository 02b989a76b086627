"""docs/man/srtpbridge.8 and docs/man/srtpprobe.1 render without groff
warnings, have the usual sections, and document every option the daemon's
and the probe's --help list."""

import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run  # noqa: E402

PAGE = os.path.join(harness.SOURCE_DIR, "docs", "man", "srtpbridge.8")
PROBE_PAGE = os.path.join(harness.SOURCE_DIR, "docs", "man", "srtpprobe.1")


def render(page):
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
    r = run(["man", "--warnings", "-l", page], env=env, timeout=60)
    return r, re.sub(r".\x08", "", r.stdout)


def undocumented(help_text, roff):
    options = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", help_text))
    # In roff source a '-' in an option is written '\-'.
    roff = roff.replace("\\-", "-")
    return options, sorted(o for o in options
                           if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), roff))


class ManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(PAGE, encoding="utf-8") as f:
            cls.source = f.read()

    @unittest.skipIf(shutil.which("man") is None, "man is not installed")
    def test_renders_without_warnings(self):
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
        r = run(["man", "--warnings", "-l", PAGE], env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "", "groff warnings")
        text = re.sub(r".\x08", "", r.stdout)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS",
                        "FILES", "SEE ALSO"):
            self.assertRegex(text, r"(?m)^%s$" % section)
        for ref in ("srtpbridge.ini(5)", "srtpbridgectl(8)", "systemd.service(5)"):
            self.assertIn(ref, text)

    def test_documents_every_option_of_help(self):
        r = run([harness.binary(), "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        options = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", r.stdout))
        self.assertIn("--version", options)
        # In roff source a '-' in an option is written '\-'.
        roff = self.source.replace("\\-", "-")
        missing = sorted(o for o in options if not re.search(r"(?<![\w-])%s(?![\w-])"
                                                             % re.escape(o), roff))
        self.assertEqual(missing, [], "options in --help but not in srtpbridge(8)")


class ProbeManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(PROBE_PAGE, encoding="utf-8") as f:
            cls.source = f.read()

    @unittest.skipIf(shutil.which("man") is None, "man is not installed")
    def test_renders_without_warnings(self):
        r, text = render(PROBE_PAGE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "", "groff warnings")
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FAULT SWITCHES",
                        "VERDICTS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
            self.assertRegex(text, r"(?m)^%s$" % section)
        for ref in ("srtpbridge(8)", "srtpbridgectl(8)"):
            self.assertIn(ref, text)

    @unittest.skipUnless(os.path.exists(harness.binary("srtpprobe")), "srtpprobe is not built")
    def test_documents_every_option_of_help(self):
        r = run([harness.binary("srtpprobe"), "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        options, missing = undocumented(r.stdout, self.source)
        self.assertIn("--hold-resume", options)
        self.assertIn("--rtp-from", options)
        self.assertEqual(missing, [], "options in --help but not in srtpprobe(1)")


if __name__ == "__main__":
    harness.main()
