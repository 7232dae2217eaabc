// tests/support/temp_dir.h: a fresh directory under $TMPDIR (or /tmp, or
// a given base directory), removed with everything in it when the object
// dies.
#pragma once

#include <filesystem>
#include <string>

namespace spirit::test {

class TempDir {
 public:
    explicit TempDir(const std::string& prefix = "spirit-test");
    // Under `base` instead of $TMPDIR. REQUIRES: base exists.
    TempDir(const std::string& prefix, const std::filesystem::path& base);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

 private:
    std::filesystem::path path_;
};

}  // namespace spirit::test
