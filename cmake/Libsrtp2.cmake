# Defines srtpbridge::srtp2, the libsrtp2 the daemon links, and on it the compile definition
# SRTPBRIDGE_SRTP_BACKEND_EXPECTED that tests/unit/test_srtplib.c checks the linked library against.
#
# Default: Debian's libsrtp2 source built on OpenSSL, linked statically. Debian's binary package is
# built on NSS and is ~5.7x slower per packet. scripts/fetch-libsrtp2 builds it once per machine
# into SRTPBRIDGE_LIBSRTP_CACHE (outside the source tree, shared by every build directory), and
# only when the cache lacks a finished build.
#
# SRTPBRIDGE_SYSTEM_LIBSRTP=ON: the system libsrtp2 (libsrtp2-dev), nothing fetched.
#
# Needs PkgConfig and PkgConfig::OPENSSL, which the including file has found.

if(SRTPBRIDGE_SYSTEM_LIBSRTP)
	pkg_check_modules(SRTP2 REQUIRED IMPORTED_TARGET libsrtp2)
	add_library(srtpbridge::srtp2 INTERFACE IMPORTED)
	target_link_libraries(srtpbridge::srtp2 INTERFACE PkgConfig::SRTP2)
	# libsrtp2 derives AES-192 keys per RFC 6188 only from 2.7 on (cisco/libsrtp#763).
	if(SRTP2_VERSION VERSION_GREATER_EQUAL 2.7.0)
		set(_srtp_aes192 1)
	else()
		set(_srtp_aes192 0)
	endif()
	target_compile_definitions(srtpbridge::srtp2 INTERFACE SRTPBRIDGE_SRTP_BACKEND_EXPECTED="nss"
	                           SRTPBRIDGE_LIBSRTP_AES192_KDF=${_srtp_aes192})
	message(STATUS "libsrtp2: system library ${SRTP2_VERSION} (SRTPBRIDGE_SYSTEM_LIBSRTP=ON)")
	return()
endif()

if(NOT "$ENV{SRTPBRIDGE_DEPS_CACHE}" STREQUAL "")
	set(_srtp_cache_default "$ENV{SRTPBRIDGE_DEPS_CACHE}/libsrtp2")
elseif(NOT "$ENV{HOME}" STREQUAL "")
	set(_srtp_cache_default "$ENV{HOME}/.cache/srtpbridge/libsrtp2")
else()
	set(_srtp_cache_default "")
endif()
set(SRTPBRIDGE_LIBSRTP_CACHE "${_srtp_cache_default}" CACHE PATH
    "Where scripts/fetch-libsrtp2 builds and keeps libsrtp2 on OpenSSL (outside the source tree)")

string(CONCAT _srtp_fallback "or configure with -DSRTPBRIDGE_SYSTEM_LIBSRTP=ON to link the "
              "system libsrtp2 (NSS, slower)")
if(SRTPBRIDGE_LIBSRTP_CACHE STREQUAL "")
	message(FATAL_ERROR "libsrtp2: HOME is not set: set SRTPBRIDGE_DEPS_CACHE or "
	                    "-DSRTPBRIDGE_LIBSRTP_CACHE=DIR, ${_srtp_fallback}")
endif()
cmake_path(ABSOLUTE_PATH SRTPBRIDGE_LIBSRTP_CACHE BASE_DIRECTORY "${CMAKE_BINARY_DIR}" NORMALIZE
           OUTPUT_VARIABLE _srtp_cache)
# A build inside the source tree would show up as untracked files and be swept up by packaging.
cmake_path(GET CMAKE_CURRENT_LIST_DIR PARENT_PATH _srtp_source_root)
cmake_path(IS_PREFIX _srtp_source_root "${_srtp_cache}" NORMALIZE _srtp_cache_in_tree)
cmake_path(IS_PREFIX CMAKE_SOURCE_DIR "${_srtp_cache}" NORMALIZE _srtp_cache_in_source)
if(_srtp_cache_in_tree OR _srtp_cache_in_source)
	message(FATAL_ERROR "libsrtp2: SRTPBRIDGE_LIBSRTP_CACHE=${_srtp_cache} is inside the source "
	                    "tree: choose a directory outside it, ${_srtp_fallback}")
endif()

set(_srtp_prefix "${_srtp_cache}/prefix")
set(_srtp_stamp "${_srtp_prefix}/.stamp")
set(_srtp_lib "${_srtp_prefix}/lib/libsrtp2.a")
if(EXISTS "${_srtp_stamp}")
	file(READ "${_srtp_stamp}" _srtp_stamp_text)
else()
	set(_srtp_stamp_text "")
endif()
if(NOT _srtp_stamp_text MATCHES "openssl rfc6188-kdf" OR NOT EXISTS "${_srtp_lib}"
   OR NOT EXISTS "${_srtp_prefix}/LICENSE")
	message(STATUS "libsrtp2: building Debian's libsrtp2 on OpenSSL into ${_srtp_cache} "
	               "(once per machine, needs network)")
	execute_process(COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/../scripts/fetch-libsrtp2"
	                        "${_srtp_cache}"
	                RESULT_VARIABLE _srtp_rc)
	if(NOT _srtp_rc EQUAL 0 OR NOT EXISTS "${_srtp_lib}" OR NOT EXISTS "${_srtp_stamp}")
		message(FATAL_ERROR "libsrtp2: scripts/fetch-libsrtp2 ${_srtp_cache} failed (${_srtp_rc}), "
		                    "see the message above: fix that, ${_srtp_fallback}")
	endif()
	file(READ "${_srtp_stamp}" _srtp_stamp_text)
endif()
string(STRIP "${_srtp_stamp_text}" _srtp_stamp_text)
message(STATUS "libsrtp2: ${_srtp_stamp_text}, static, from ${_srtp_prefix}")
# Its BSD licence asks binaries that contain it to carry its notice.
install(FILES "${_srtp_prefix}/LICENSE" DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME libsrtp2.LICENSE)

add_library(srtpbridge::srtp2 STATIC IMPORTED)
set_target_properties(srtpbridge::srtp2 PROPERTIES
	IMPORTED_LOCATION "${_srtp_lib}"
	INTERFACE_INCLUDE_DIRECTORIES "${_srtp_prefix}/include"
	INTERFACE_LINK_LIBRARIES PkgConfig::OPENSSL)
# scripts/fetch-libsrtp2 applies the RFC 6188 AES-192 key derivation fix (the stamp says so).
target_compile_definitions(srtpbridge::srtp2 INTERFACE SRTPBRIDGE_SRTP_BACKEND_EXPECTED="openssl"
                           SRTPBRIDGE_LIBSRTP_AES192_KDF=1)
# If the cache is wiped, the next build re-runs cmake, which builds it again.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_srtp_stamp}")
