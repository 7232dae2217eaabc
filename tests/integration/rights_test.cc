// Tokens and their rights, through a real spiritd: a token in client.tokens
// may do everything; a [[client.grants]] token may publish and subscribe
// only where its patterns allow, and change streams only with admin. A
// refused request is answered with `unauthorized` naming what was refused,
// and the connection keeps serving.
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

        auto refused = publish(*c, "audit.x");
        REQUIRE_FALSE(refused);
        CHECK(refused.error().is(core::errc::unauthorized));
        CHECK_THAT(refused.error().detail, Contains("may not publish to audit.x"));
        CHECK_FALSE(publish(*c, "orders"));  // "orders.>" needs a token after "orders"

        // Streams and patterns inside a subscribe pattern; nothing wider.
        REQUIRE(subscribe(*c, "orders.eu"));
        REQUIRE(subscribe(*c, "orders.*"));
        REQUIRE(subscribe(*c, "orders.*.north"));
        REQUIRE(subscribe(*c, "prices.usd"));
        auto wide = subscribe(*c, ">");
        REQUIRE_FALSE(wide);
        CHECK(wide.error().is(core::errc::unauthorized));
        CHECK_THAT(wide.error().detail, Contains("may not subscribe to >"));
        CHECK_FALSE(subscribe(*c, "prices.>"));
        CHECK_FALSE(subscribe(*c, "audit.x"));

        // No admin: stream changes and verify are refused; reads of
        // metadata are not.
        auto create = c->create_stream("orders.new", {});
        REQUIRE_FALSE(create);
        CHECK(create.error().is(core::errc::unauthorized));
        CHECK_THAT(create.error().detail, Contains("admin = false"));
        CHECK_FALSE(c->delete_stream("orders.eu"));
        CHECK_FALSE(c->verify("orders.eu"));
        REQUIRE(c->status());
        REQUIRE(c->stream_info("orders.eu"));

        // The connection still serves after every refusal.
        REQUIRE(publish(*c, "orders.eu"));
    }

    SECTION("a grant without publish patterns may only read") {
        auto c = connect(d, reader_token);
        REQUIRE(c);
        CHECK_FALSE(publish(*c, "orders.eu"));
        REQUIRE(subscribe(*c, ">"));
    }
}
