// net/uv_error.h: libuv errors as core::Error values.
#pragma once

#include <string>

#include "core/result.h"

namespace spirit::net {

const std::error_category& uv_category() noexcept;

// An Error for a negative libuv return code, with what we were doing.
core::Error uv_error(int rc, std::string what);

}  // namespace spirit::net
