# `cpack -G DEB` in a build dir makes spirit_VERSION_amd64.deb: the
# programs in /usr/bin, the unit in /usr/lib/systemd/system, sysusers and
# tmpfiles in /usr/lib, the configuration in /etc/spirit (a conffile), and
# maintainer scripts (systemd/deb/) that create the user and directories.
# Shared library dependencies come from dpkg-shlibdeps (package dpkg-dev).
set(CPACK_PACKAGE_NAME spirit)
set(CPACK_PACKAGE_VENDOR "spirit")
set(CPACK_PACKAGE_CONTACT "spirit maintainers <spirit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "peer-to-peer store-and-forward event streaming daemon (spiritd) and its CLI")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
# systemd-sysusers and systemd-tmpfiles come with systemd.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/systemd/deb/postinst ${PROJECT_SOURCE_DIR}/systemd/deb/prerm
    ${PROJECT_SOURCE_DIR}/systemd/deb/postrm ${PROJECT_SOURCE_DIR}/systemd/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
