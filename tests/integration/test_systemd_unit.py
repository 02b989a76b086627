"""The installed systemd unit, checked the way systemd would load it.

`cmake --install` runs into a DESTDIR with the build's own prefix: the unit's
ExecStart= path is fixed when CMake configures the build
(CMAKE_INSTALL_FULL_SBINDIR), so installing with another --prefix would
install a unit that names a binary that is not there.

How the unit is verified (systemd 252):
  - `systemd-analyze verify --root=DESTDIR UNIT` loads the unit as PID 1
    would, with every path resolved under DESTDIR. It reports unknown or
    invalid settings, and it checks that each Exec*= command exists and is
    executable *under the root*: without --root it would look for the binary
    on this machine. The negative control below proves that it does.
  - A root needs the standard targets that a service's default dependencies
    name (sysinit.target, basic.target, shutdown.target, ...). A DESTDIR has
    none, so the machine's own *.target files are copied into it.
  - Documentation=man: pages are looked up by running man(1), which does not
    follow --root: MANPATH points it at the DESTDIR's man pages instead, so
    the pages named there must really be installed.
  - User=srtpbridge: systemd-analyze verify only checks that the name is
    valid, not that the user exists (it is resolved when the service
    starts), so a machine without the user passes, honestly. What creates
    the user is the installed sysusers.d file: systemd-sysusers --root=DESTDIR
    runs it and the test checks that the user and group of the unit exist in
    DESTDIR/etc/passwd and DESTDIR/etc/group afterwards.
Any line systemd-analyze prints about our unit fails the test.
"""

import glob
import os
import re
import shlex
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run  # noqa: E402

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
UNIT = "srtpbridge.service"
HOST_UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")


def cmake_cache(name, default=None):
    path = os.path.join(harness.BUILD_DIR, "CMakeCache.txt")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^%s(?::[A-Z]+)?=(.*)$" % re.escape(name), line.rstrip("\n"))
            if m and m.group(1):  # GNUInstallDirs caches '' and means its default
                return m.group(1)
    return default


def parse_unit(path):
    """{section: {key: [values in order]}}; an empty assignment is kept as ''."""
    unit, section = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = unit.setdefault(line.strip("[]"), {})
                continue
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return unit


def exec_argv(value):
    """An Exec*= value as argv, without systemd's special prefixes (-@:+!)."""
    return shlex.split(value.lstrip("-@:+!"))


def analyze_problems(output, unit=UNIT):
    """The lines of systemd-analyze's output that are about our unit (or about
    nothing in particular); lines that name another unit are left out."""
    ours = []
    for line in output.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^(?:/\S*/)?([\w@.\\-]+\.(?:service|target|socket|timer|path|mount|slice|"
                     r"scope|device|swap|automount))(?::\d+)?:", line)
        if m and m.group(1) != unit:
            continue
        ours.append(line)
    return ours


@unittest.skipIf(SYSTEMD_ANALYZE is None, "systemd-analyze is not installed")
class SystemdUnitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir()
        cls.root = cls.tmp.join("destdir")
        os.makedirs(cls.root)
        cls.prefix = cmake_cache("CMAKE_INSTALL_PREFIX", "/usr/local")
        env = dict(os.environ, DESTDIR=cls.root)
        r = run(["cmake", "--install", harness.BUILD_DIR], env=env, timeout=120)
        if r.returncode != 0:
            cls.tmp.cleanup()
            raise AssertionError("cmake --install failed:\n%s%s" % (r.stdout, r.stderr))
        cls.unit_rel = os.path.join(cls.prefix, "lib/systemd/system", UNIT)
        cls.unit_path = cls.root + cls.unit_rel
        cls.mandir = cls.root + os.path.join(
            cls.prefix, cmake_cache("CMAKE_INSTALL_MANDIR", "share/man"))
        cls.unit = parse_unit(cls.unit_path) if os.path.exists(cls.unit_path) else None

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def service(self, key):
        return self.unit["Service"].get(key, [])

    def setUp(self):
        self.assertIsNotNone(self.unit, "%s was not installed" % self.unit_rel)

    @staticmethod
    def add_host_targets(root):
        """Copies the machine's *.target units into root (see the module doc)."""
        dest = os.path.join(root, "usr/lib/systemd/system")
        os.makedirs(dest, exist_ok=True)
        for d in HOST_UNIT_DIRS:
            for target in glob.glob(os.path.join(d, "*.target")):
                out = os.path.join(dest, os.path.basename(target))
                if not os.path.exists(out):
                    shutil.copyfile(target, out)

    def verify(self, root, unit_rel, env=None):
        env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat", **(env or {}))
        r = run([SYSTEMD_ANALYZE, "verify", "--recursive-errors=no", "--root=" + root, unit_rel],
                env=env, timeout=60)
        return r, analyze_problems(r.stdout + r.stderr)

    def test_verify_reports_nothing(self):
        self.add_host_targets(self.root)
        r, problems = self.verify(self.root, self.unit_rel, env={"MANPATH": self.mandir})
        self.assertEqual(problems, [], "systemd-analyze verify complains about %s" % UNIT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_verify_would_catch_a_missing_binary(self):
        """Negative control: the method above does check ExecStart= under the root."""
        other = self.tmp.join("no-binary-root")
        dest = other + os.path.dirname(self.unit_rel)
        os.makedirs(dest)
        shutil.copyfile(self.unit_path, os.path.join(dest, UNIT))
        self.add_host_targets(other)
        r, problems = self.verify(other, self.unit_rel, env={"MANPATH": self.mandir})
        binary = exec_argv(self.service("ExecStart")[0])[0]
        self.assertTrue(any("is not executable" in p and binary in p for p in problems),
                        "systemd-analyze did not notice that %s is missing:\n%s%s"
                        % (binary, r.stdout, r.stderr))
        self.assertNotEqual(r.returncode, 0)

    def test_exec_paths_exist_in_the_install(self):
        sbin = os.path.join(self.prefix, cmake_cache("CMAKE_INSTALL_SBINDIR", "sbin"))
        text = open(self.unit_path, encoding="utf-8").read()
        self.assertNotRegex(text, r"@[A-Za-z_]+@", "unsubstituted @VAR@ in the unit")
        start = exec_argv(self.service("ExecStart")[0])
        self.assertEqual(start[0], os.path.join(sbin, "srtpbridge"))
        self.assertEqual(len(self.service("ExecStart")), 1)
        config = start[start.index("-c") + 1]
        self.assertTrue(os.path.isfile(self.root + config),
                        "ExecStart's -c %s is not installed" % config)
        self.assertIn(exec_argv(self.service("ExecStartPre")[0]),
                      [[start[0], "--check", "-c", config], [start[0], "-c", config, "--check"]])
        reload = [exec_argv(v) for v in self.service("ExecReload")]
        self.assertEqual(reload[-1], ["/bin/kill", "-HUP", "$MAINPID"])
        for key in ("ExecStartPre", "ExecStart", "ExecReload"):
            for value in self.service(key):
                path = exec_argv(value)[0]
                where = path if path.startswith("/bin/") else self.root + path
                self.assertTrue(os.access(where, os.X_OK), "%s=%s: %s is not executable"
                                % (key, value, where))

    def test_installed_check_accepts_installed_config(self):
        """ExecStartPre= as the service runs it, on the installed files."""
        argv = exec_argv(self.service("ExecStartPre")[0])
        argv = [self.root + argv[0]] + [self.root + a if a.startswith("/") else a
                                        for a in argv[1:]]
        r = run(argv, timeout=30)
        self.assertEqual(r.returncode, 0, "%s\n%s%s" % (argv, r.stdout, r.stderr))

    def test_settings(self):
        s = self.unit["Service"]
        want = {
            "Type": ["notify"], "NotifyAccess": ["main"], "Restart": ["on-failure"],
            "User": ["srtpbridge"], "Group": ["srtpbridge"], "LimitNOFILE": ["131072"],
            "RuntimeDirectory": ["srtpbridge"], "RuntimeDirectoryMode": ["0750"],
            "CapabilityBoundingSet": [""], "AmbientCapabilities": [""],
            "ProtectSystem": ["strict"], "NoNewPrivileges": ["yes"], "UMask": ["0027"],
            "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
            "SystemCallArchitectures": ["native"], "KillSignal": ["SIGTERM"],
        }
        for key, values in want.items():
            self.assertEqual(s.get(key), values, key)
        self.assertIn("@system-service", s.get("SystemCallFilter", []))
        self.assertEqual(s.get("WatchdogSec"), ["30s"])
        stop = s.get("TimeoutStopSec", ["90s"])[0]
        self.assertRegex(stop, r"^\d+s?$")
        self.assertGreater(int(stop.rstrip("s")), 300, "TimeoutStopSec must outlast drain_timeout")
        self.assertIn(s.get("KillMode", ["control-group"])[0], ("mixed", "control-group"))

    def test_security_exposure(self):
        """The hardening stays where it is: exposure 2.0 of 10 at most ("OK")."""
        self.add_host_targets(self.root)
        r = run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--root=" + self.root,
                 "--threshold=20", "--no-pager", UNIT],
                env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0"), timeout=60)
        overall = [line for line in r.stdout.splitlines() if "Overall exposure" in line]
        self.assertEqual(r.returncode, 0, "\n".join(overall) or r.stdout + r.stderr)

    @unittest.skipIf(shutil.which("systemd-sysusers") is None, "systemd-sysusers not installed")
    def test_sysusers_creates_the_unit_user(self):
        conf = self.root + os.path.join(self.prefix, "lib/sysusers.d/srtpbridge.conf")
        self.assertTrue(os.path.isfile(conf), "sysusers.d file not installed")
        sysroot = self.tmp.join("sysusers-root")
        os.makedirs(os.path.join(sysroot, "etc"))
        r = run(["systemd-sysusers", "--root=" + sysroot, conf], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        complaints = [line for line in (r.stdout + r.stderr).splitlines()
                      if re.search(r"(?i)ignor|fail|warn|invalid|not ", line)]
        self.assertEqual(complaints, [])
        with open(os.path.join(sysroot, "etc/passwd"), encoding="utf-8") as f:
            users = {p[0]: p for p in (line.rstrip("\n").split(":") for line in f)}
        with open(os.path.join(sysroot, "etc/group"), encoding="utf-8") as f:
            groups = {g[0]: g for g in (line.rstrip("\n").split(":") for line in f)}
        user, group = self.service("User")[0], self.service("Group")[0]
        self.assertIn(user, users)
        self.assertIn(group, groups)
        entry = users[user]
        self.assertEqual(entry[3], groups[group][2], "the user's primary group")
        self.assertLess(int(entry[2]), 1000, "not a system uid")
        self.assertEqual(entry[5:], ["/nonexistent", "/usr/sbin/nologin"])


if __name__ == "__main__":
    harness.main()
