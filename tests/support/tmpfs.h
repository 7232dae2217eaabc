// tests/support/tmpfs.h: a tmpfs of a given size mounted for one test (a
// disk that fills up; needs root), unmounted when it goes.
#pragma once

#include <catch2/catch.hpp>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace spirit::test {

class TmpfsMount {
 public:
    // `size` as mount(8) takes it: "12m".
    TmpfsMount(const std::filesystem::path& at, const std::string& size) : at_(at) {
        std::filesystem::create_directories(at);
        std::string options = "size=" + size;
        if (::mount("spirit-test", at.c_str(), "tmpfs", 0, options.c_str()) != 0) {
            FAIL("mounting a tmpfs at " << at << " failed: " << std::strerror(errno)
                                        << " (this test needs root)");
        }
        mounted_ = true;
    }
    ~TmpfsMount() {
        if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
    }
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;

 private:
    std::filesystem::path at_;
    bool mounted_ = false;
};

}  // namespace spirit::test
