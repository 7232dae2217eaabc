# Every dependency is a Debian package; ./test and ./run install the missing
# ones. See README "Build layout" for why each one is here.
find_package(PkgConfig REQUIRED)
pkg_check_modules(libuv REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(libsodium REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(lmdb REQUIRED IMPORTED_TARGET lmdb)
find_package(msgpack REQUIRED CONFIG)           # target msgpackc-cxx (header-only C++ API)
find_package(tl-expected REQUIRED CONFIG)
find_package(fmt REQUIRED CONFIG)
find_package(spdlog REQUIRED CONFIG)
find_package(CLI11 REQUIRED CONFIG)
find_package(tomlplusplus REQUIRED CONFIG)
find_package(Threads REQUIRED)
find_package(Catch2 REQUIRED CONFIG)
