// Tokens and their rights, through a real spiritd: a token in client.tokens
// may do everything; a [[client.grants]] token may publish and subscribe
// only where its patterns allow, and change streams only with admin. A
// refused request is answered with `unauthorized` naming what was refused,
// changes nothing (a refused publish creates no stream, a refused delete
// leaves the stream), and the connection keeps serving.
#include <catch2/catch.hpp>

#include <string>

#include "tests/integration/daemon_harness.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

const std::string full_token = "full-rights-token-0123456789";
const std::string orders_token = "orders-only-token-0123456789";
const std::string reader_token = "reader-only-token-0123456789";

std::unique_ptr<net::Client> connect(const test::Daemon& d, std::optional<std::string> token) {
    net::ClientOptions options;
    options.endpoint = d.endpoint();
    options.reconnect = false;
    options.connect_timeout_ms = 5000;
    options.token = std::move(token);
    auto c = net::Client::connect(options);
    return c ? std::move(*c) : nullptr;
}

core::Result<net::PublishReceipt> publish(net::Client& c, std::string_view stream) {
    const std::string payload = "p";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    return c.publish(stream, std::span(&e, 1));
}

core::Result<net::Subscription*> subscribe(net::Client& c, std::string target) {
    net::SubscribeOptions options;
    options.target = std::move(target);
    return c.subscribe(options, [](const core::EnvelopeView&) {});
}

// A refusal must be `unauthorized` with a detail naming it, not any failure.
template <class T>
void check_unauthorized(const core::Result<T>& r, std::string_view says) {
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().is(core::errc::unauthorized));
    CHECK_THAT(r.error().detail, Contains(std::string(says)));
}

// The stream does not exist (asked with a token that may read metadata).
void check_no_stream(net::Client& c, std::string_view stream) {
    auto info = c.stream_info(stream);
    REQUIRE_FALSE(info);
    INFO(info.error().message());
    CHECK(info.error().is(core::errc::not_found));
}

}  // namespace

TEST_CASE("grants limit publish, subscribe and stream changes to their patterns", "[integration]") {
    test::DaemonOptions options;
    options.token = full_token;
    options.client_toml = "tokens = [\"" + full_token + "\"]";
    options.extra_toml =
        ""
        "[[client.grants]]\ntoken = \"" +
        orders_token +
        "\"\npublish = [\"orders.>\"]\nsubscribe = [\"orders.>\", \"prices.*\"]\n"
        "[[client.grants]]\ntoken = \"" +
        reader_token + "\"\nsubscribe = [\">\"]\n";
    test::Daemon d(options);
    d.start();

    SECTION("no token, or an unknown one, is refused at Hello") {
        CHECK(connect(d, std::nullopt) == nullptr);
        CHECK(connect(d, "not-a-known-token-0123456789") == nullptr);
        CHECK_THAT(d.log(), Contains("unknown token"));
    }

    SECTION("a token in client.tokens may do everything") {
        auto c = connect(d, full_token);
        REQUIRE(c);
        REQUIRE(publish(*c, "audit.x"));
        REQUIRE(c->create_stream("made.here", {}));
        REQUIRE(subscribe(*c, ">"));
        REQUIRE(c->verify("audit.x"));
    }

    SECTION("a grant publishes and subscribes only where its patterns allow") {
        auto c = connect(d, orders_token);
        REQUIRE(c);
        REQUIRE(publish(*c, "orders.eu"));
        REQUIRE(publish(*c, "orders.eu.north"));

        check_unauthorized(publish(*c, "audit.x"), "may not publish to audit.x");
        check_no_stream(*c, "audit.x");
        // "orders.>" needs a token after "orders".
        check_unauthorized(publish(*c, "orders"), "may not publish to orders");
        check_no_stream(*c, "orders");

        // Streams and patterns inside a subscribe pattern; nothing wider.
        REQUIRE(subscribe(*c, "orders.eu"));
        REQUIRE(subscribe(*c, "orders.*"));
        REQUIRE(subscribe(*c, "orders.*.north"));
        REQUIRE(subscribe(*c, "prices.usd"));
        check_unauthorized(subscribe(*c, ">"), "may not subscribe to >");
        check_unauthorized(subscribe(*c, "prices.>"), "may not subscribe to prices.>");
        check_unauthorized(subscribe(*c, "audit.x"), "may not subscribe to audit.x");

        // No admin: stream changes and verify are refused; reads of
        // metadata are not.
        check_unauthorized(c->create_stream("orders.new", {}), "admin = false");
        check_no_stream(*c, "orders.new");
        check_unauthorized(c->delete_stream("orders.eu"), "admin = false");
        check_unauthorized(c->verify("orders.eu"), "admin = false");
        REQUIRE(c->status());
        auto kept = c->stream_info("orders.eu");
        REQUIRE(kept);
        CHECK(kept->last_seq.value() == 1);  // the refused delete left its event

        // The connection still serves after every refusal.
        REQUIRE(publish(*c, "orders.eu"));
    }

    SECTION("a grant without publish patterns may only read") {
        auto c = connect(d, reader_token);
        REQUIRE(c);
        check_unauthorized(publish(*c, "orders.eu"), "may not publish to orders.eu");
        check_no_stream(*c, "orders.eu");
        REQUIRE(subscribe(*c, ">"));
    }
}
