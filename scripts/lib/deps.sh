# Shared by scripts/demo and scripts/test: install missing Debian packages.
# Sourced, not run. Debian 12 (bookworm) is the target.

# What every build needs. libsrtp2 itself is built on OpenSSL from Debian's
# source package by scripts/fetch-libsrtp2 (dpkg-dev, debian-archive-keyring).
SRTPBRIDGE_BUILD_PACKAGES="build-essential cmake pkg-config libosip2-dev libevent-dev libssl-dev
	libinih-dev libsystemd-dev liburing-dev libcmocka-dev dpkg-dev debian-archive-keyring openssl"
# What the test suite adds: clang with libFuzzer and the sanitizer runtimes,
# clang-format, python3 for the integration tests, systemd-analyze for the
# unit check, man for the man page check, git to list the files to format,
# sip-tester (sipp) as the real SIP peer of the call tests, baresip-core
# (baresip) as the SRTP phones of the end-to-end audio test, rtpengine-daemon
# (rtpengine, driven over its ng protocol) as the other SRTP implementation
# of the end-to-end matrix and of bench/media.
SRTPBRIDGE_TEST_PACKAGES="clang libclang-rt-14-dev clang-format python3 systemd man-db git
	sip-tester baresip-core rtpengine-daemon"

missing_packages() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	echo "$missing"
}

# ensure_packages PKG...: installs the missing ones when root, else names them.
ensure_packages() {
	local missing
	missing=$(missing_packages "$@")
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages:$missing" >&2
		echo "install them as root: apt-get install$missing" >&2
		return 1
	fi
	echo "installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# Test peers come with services (rtpengine-daemon): the tests start
	# their own on loopback, so none is started by the install (a
	# policy-rc.d that says no, unless the machine has one already).
	local policy=/usr/sbin/policy-rc.d own_policy=no
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=yes
	fi
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2 || {
		[ "$own_policy" = yes ] && rm -f "$policy"
		return 1
	}
	[ "$own_policy" = yes ] && rm -f "$policy"
	return 0
}
