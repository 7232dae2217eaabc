#include "core/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/assert.h"

namespace spirit::core {

namespace {

constexpr std::string_view key_file_tag = "spirit-ed25519-seed ";
constexpr std::size_t seed_bytes = crypto_sign_SEEDBYTES;
static_assert(crypto_sign_PUBLICKEYBYTES == PublicKey::size_bytes);
static_assert(crypto_sign_BYTES == Signature::size_bytes);

std::string base64(const unsigned char* bytes, std::size_t size) {
    std::string out(sodium_base64_encoded_len(size, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes, size, sodium_base64_VARIANT_ORIGINAL);
    out.resize(std::strlen(out.c_str()));
    return out;
}

// Decodes exactly `size` bytes of base64 into `out`.
bool from_base64(std::string_view text, unsigned char* out, std::size_t size) {
    std::size_t decoded = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out, size, text.data(), text.size(), nullptr, &decoded, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        return false;
    }
    return decoded == size && end == text.data() + text.size();
}

Error config_error(const std::filesystem::path& file, std::string what) {
    return Error{make_error_code(errc::config_invalid),
                 fmt::format("key file {}: {}", file.string(), what)};
}

}  // namespace

std::string public_key_text(const PublicKey& key) {
    return base64(reinterpret_cast<const unsigned char*>(key.bytes.data()), key.bytes.size());
}

Result<PublicKey> parse_public_key(std::string_view text) {
    PublicKey key;
    if (!from_base64(text, reinterpret_cast<unsigned char*>(key.bytes.data()), key.bytes.size())) {
        return make_error(errc::invalid_argument,
                          fmt::format("{:?} is not a public key (44 characters of base64 for 32 "
                                      "bytes, as spirit keygen prints)",
                                      text.substr(0, 80)));
    }
    return key;
}

bool verify_signature(const PublicKey& key, ByteView message, const Signature& signature) {
    return crypto_sign_verify_detached(
               reinterpret_cast<const unsigned char*>(signature.bytes.data()),
               reinterpret_cast<const unsigned char*>(message.data()), message.size(),
               reinterpret_cast<const unsigned char*>(key.bytes.data())) == 0;
}

Identity::Identity() {
    secret_ = static_cast<unsigned char*>(sodium_malloc(crypto_sign_SECRETKEYBYTES));
    SPIRIT_ASSERT_MSG(secret_ != nullptr, "sodium_malloc failed");
}

Identity::~Identity() {
    if (secret_ != nullptr) sodium_free(secret_);  // wipes
}

Identity::Identity(Identity&& other) noexcept
    : secret_(std::exchange(other.secret_, nullptr)), public_(other.public_) {}

Identity& Identity::operator=(Identity&& other) noexcept {
    if (this != &other) {
        if (secret_ != nullptr) sodium_free(secret_);
        secret_ = std::exchange(other.secret_, nullptr);
        public_ = other.public_;
    }
    return *this;
}

Identity Identity::generate() {
    Identity id;
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(id.public_.bytes.data()), id.secret_);
    return id;
}

Result<Identity> Identity::load(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Unexpected{config_error(file, std::strerror(errno))};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Unexpected{config_error(file, "not a regular file")};
    }
    if ((st.st_mode & 077) != 0) {
        ::close(fd);
        return Unexpected{config_error(
            file, fmt::format("mode {:04o} lets others read or change the secret key; run "
                              "chmod 600 {}",
                              st.st_mode & 07777, file.string()))};
    }
    char text[256] = {};
    const ssize_t got = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    std::string_view line(text, got > 0 ? static_cast<std::size_t>(got) : 0);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (!line.starts_with(key_file_tag)) {
        return Unexpected{
            config_error(file, "not a spirit key file (make one with spirit keygen)")};
    }
    line.remove_prefix(key_file_tag.size());
    unsigned char seed[seed_bytes];
    if (!from_base64(line, seed, seed_bytes)) {
        sodium_memzero(seed, sizeof seed);
        return Unexpected{config_error(file, "the seed is not base64 of 32 bytes")};
    }
    Identity id;
    crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(id.public_.bytes.data()), id.secret_,
                             seed);
    sodium_memzero(seed, sizeof seed);
    return id;
}

Signature Identity::sign(ByteView message) const {
    Signature s;
    crypto_sign_detached(reinterpret_cast<unsigned char*>(s.bytes.data()), nullptr,
                         reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                         secret_);
    return s;
}

Result<void> Identity::save(const std::filesystem::path& file) const {
    unsigned char seed[seed_bytes];
    crypto_sign_ed25519_sk_to_seed(seed, secret_);
    std::string line = std::string(key_file_tag) + base64(seed, seed_bytes) + "\n";
    sodium_memzero(seed, sizeof seed);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        const int e = errno;
        sodium_memzero(line.data(), line.size());
        if (e == EEXIST) {
            return make_error(
                errc::already_exists,
                fmt::format("{} exists; spirit keygen never replaces a key file", file.string()));
        }
        return make_error(errc::invalid_argument,
                          fmt::format("creating {}: {}", file.string(), std::strerror(e)));
    }
    const ssize_t wrote = ::write(fd, line.data(), line.size());
    const bool synced = ::fsync(fd) == 0;
    const int e = errno;
    ::close(fd);
    sodium_memzero(line.data(), line.size());
    if (wrote != static_cast<ssize_t>(line.size()) || !synced) {
        ::unlink(file.c_str());
        return make_error(errc::storage_io,
                          fmt::format("writing {}: {}", file.string(), std::strerror(e)));
    }
    return {};
}

}  // namespace spirit::core
