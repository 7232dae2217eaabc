#include "net/uv_error.h"

#include <uv.h>

#include <fmt/format.h>

namespace spirit::net {
namespace {

class UvCategory final : public std::error_category {
 public:
    const char* name() const noexcept override { return "uv"; }
    std::string message(int rc) const override {
        return fmt::format("{} ({})", uv_strerror(rc), uv_err_name(rc));
    }
};

}  // namespace

const std::error_category& uv_category() noexcept {
    static const UvCategory category;
    return category;
}

core::Error uv_error(int rc, std::string what) {
    return core::Error{std::error_code(rc, uv_category()),
                       fmt::format("{}: {} ({})", what, uv_strerror(rc), uv_err_name(rc))};
}

}  // namespace spirit::net
