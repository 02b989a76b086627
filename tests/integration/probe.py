"""srtpprobe from the tests: an answerer kept running, calls placed and their
JSON reports read back. Every process is registered with harness's cleanup
(and the test's), readiness is the answerer's "listening" line, never a
sleep."""

import json
import os
import re
import subprocess

import harness

READY_TIMEOUT = 10.0


def _register(test, proc):
    with harness._registry_lock:
        harness._live_procs.append(proc)
    test.addCleanup(harness._kill_process, proc)


class Answerer:
    """`srtpprobe answer --json` on the given listen addresses (a
    harness.Daemon run with program=srtpprobe: wait() gives its exit status
    with --once); reports() are the JSON objects it printed, one per call
    ended."""

    def __init__(self, test, listen, args=()):
        argv = ["answer", "--json"]
        for spec in listen:
            argv += ["--listen", spec]
        self.d = harness.Daemon(None, args=argv + list(args),
                                program=harness.binary("srtpprobe"))
        test.addCleanup(self.d.kill)
        self.d.start()
        self.proc = self.d.proc
        # one line per address, once every one is bound; port 0 in a
        # listen address lets the kernel pick (nobody can take it between a
        # pick and the bind): the line says which, in self.ports
        self.d.wait_for_log(lambda r: r["_raw"].startswith("srtpprobe: listening"),
                            count=len(listen), timeout=READY_TIMEOUT)
        self.ports = [int(m.group(1)) for m in
                      (re.search(r"listening \w+:.*:(\d+)$", r["_raw"])
                       for r in self.d.logs()) if m]
        self.port = self.ports[0] if self.ports else None

    def reports(self, since=0):
        return [json.loads(r["_raw"]) for r in self.d.stdout.snapshot(since)
                if r["_raw"].startswith("{")]

    def wait_reports(self, n, timeout=15.0, since=0):
        self.d.stdout.wait_for(lambda r: r["_raw"].startswith("{"), count=n, since=since,
                               timeout=timeout)
        return self.reports(since)[:n]

    def wait(self, timeout=None):
        return self.d.wait(timeout=timeout)

    def stderr(self):
        return "\n".join(r["_raw"] for r in self.d.logs())


class Call:
    """One `srtpprobe call --json` running; result() waits for it."""

    def __init__(self, test, to, args=(), timeout=60):
        self.argv = [harness.binary("srtpprobe"), "call", "--json", "--to", to] + list(args)
        self.timeout = timeout
        self.proc = subprocess.Popen(harness._pdeathsig_prefix() + self.argv,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        _register(test, self.proc)

    def result(self):
        """(exit status, report dict or None, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("%s did not finish in %s s:\n%s" %
                                 (" ".join(self.argv), self.timeout, err))
        report = None
        for line in out.splitlines():
            if line.strip().startswith("{"):
                report = json.loads(line)
        if report is None and out.strip().startswith("{"):
            report = json.loads(out)
        return self.proc.returncode, report, err


def call(test, to, args=(), timeout=60):
    return Call(test, to, args, timeout).result()


def describe(report):
    """A short account of a report for assertion messages."""
    return json.dumps(report, indent=1, sort_keys=True) if report else "(no report)"


def tls_certs(directory, openssl="openssl"):
    """A CA and a server certificate for 127.0.0.1 / sbc.test in directory:
    returns (ca.pem, server.pem, server.key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    d = directory

    def run(*args):
        r = harness.run([openssl, *args])
        if r.returncode:
            raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr))

    run("req", "-x509", *ec, "-days", "30", "-subj", "/CN=ca", "-keyout", d + "/ca.key",
        "-out", d + "/ca.pem")
    with open(d + "/san.ext", "w") as f:
        f.write("subjectAltName=DNS:sbc.test,IP:127.0.0.1\n")
    run("req", *ec, "-subj", "/CN=server", "-keyout", d + "/server.key", "-out",
        d + "/server.csr")
    run("x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
        "-CAcreateserial", "-days", "30", "-extfile", d + "/san.ext", "-out", d + "/server.pem")
    return d + "/ca.pem", d + "/server.pem", d + "/server.key"


def exists():
    return os.access(harness.binary("srtpprobe"), os.X_OK)
