// core/assert.h: always-on assertions for programmer errors (broken
// invariants, impossible states). Never use them on input from outside:
// bad input is a Result error (see core/result.h).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace spirit::core::detail {

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line,
                                     const char* context) noexcept {
    std::fprintf(stderr, "spirit: assertion failed: %s at %s:%d%s%s\n", expr, file, line,
                 context[0] != '\0' ? ": " : "", context);
    std::fflush(stderr);
    std::abort();
}

}  // namespace spirit::core::detail

// Compiled in every build type: NDEBUG does not remove it.
#define SPIRIT_ASSERT(cond)                                                     \
    do {                                                                        \
        if (!(cond)) [[unlikely]] {                                             \
            ::spirit::core::detail::assert_fail(#cond, __FILE__, __LINE__, ""); \
        }                                                                       \
    } while (false)

// `message` is a const char* (a literal, or .c_str() of a string built only
// on the failure path).
#define SPIRIT_ASSERT_MSG(cond, message)                                               \
    do {                                                                               \
        if (!(cond)) [[unlikely]] {                                                    \
            ::spirit::core::detail::assert_fail(#cond, __FILE__, __LINE__, (message)); \
        }                                                                              \
    } while (false)
