// Retention limits set on a stream are applied by the daemon's once-a-second
// sweep: by event count, by size, and by age. What stays is a verified
// chain that starts at the new first seq.
#include <catch2/catch.hpp>

#include <thread>

#include "tests/integration/daemon_harness.h"

using namespace spirit;
using std::chrono::seconds;

namespace {

void publish(net::Client& client, const std::string& stream, int count, std::size_t size) {
    const std::string payload(size, 'r');
    std::vector<core::EventDraft> batch(
        static_cast<std::size_t>(count),
        core::EventDraft{std::nullopt, "t", {}, core::as_bytes(payload)});
    REQUIRE(client.publish(stream, batch));
}

core::protocol::StreamDescription wait_for_first_seq(net::Client& client, const std::string& stream,
                                                     std::uint64_t at_least) {
    core::protocol::StreamDescription d;
    for (int i = 0; i < 100; ++i) {
        auto info = client.stream_info(stream);
        REQUIRE(info);
        d = *info;
        if (d.first_seq.value() >= at_least) return d;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("stream " << stream << " still starts at seq " << d.first_seq.value() << ", expected "
                   << at_least);
    return d;
}

}  // namespace

TEST_CASE("retention trims streams to their event, size and age limits", "[integration]") {
    test::Daemon daemon;
    daemon.start();
    auto client = daemon.client();

    core::StreamPolicy by_count;
    by_count.retention.events_max = 100;
    REQUIRE(client->create_stream("recent", by_count));
    publish(*client, "recent", 1000, 50);
    auto d = wait_for_first_seq(*client, "recent", 901);
    CHECK(d.first_seq.value() == 901);
    CHECK(d.event_count == 100);

    core::StreamPolicy by_size;
    by_size.retention.bytes_max = 64 * 1024;
    REQUIRE(client->create_stream("small", by_size));
    publish(*client, "small", 1000, 1000);  // about 1 MB
    d = wait_for_first_seq(*client, "small", 900);
    CHECK(d.event_bytes <= 64 * 1024);
    CHECK(d.event_bytes > 60 * 1024);

    core::StreamPolicy by_age;
    by_age.retention.age_ms_max = 500;
    REQUIRE(client->create_stream("fresh", by_age));
    publish(*client, "fresh", 10, 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    publish(*client, "fresh", 5, 10);
    d = wait_for_first_seq(*client, "fresh", 11);
    CHECK(d.last_seq.value() == 15);

    for (const char* stream : {"recent", "small", "fresh"}) {
        auto v = client->verify(stream);
        REQUIRE(v);
        CHECK_FALSE(v->break_seq);
    }
}
