#include "tests/ops/ops_harness.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <sstream>

#include <fmt/format.h>

#include "tests/cluster/tcp_proxy.h"
#include "tests/integration/daemon_harness.h"
#include "tests/support/bytes.h"

namespace spirit::test {

HttpReply http_request(std::uint16_t port, const std::string& path, const std::string& method) {
    HttpReply reply;
    const int fd = connect_loopback(port);
    if (fd < 0) return reply;
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const std::string request =
        fmt::format("{} {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
        ::close(fd);
        return reply;
    }
    std::string response;
    char buffer[65536];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        response.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return reply;
    reply.status = std::stoi(response.substr(9, 3));
    const std::size_t body = response.find("\r\n\r\n");
    if (body != std::string::npos) reply.body = response.substr(body + 4);
    return reply;
}

std::optional<double> sample_value(const std::string& scrape, const std::string& series) {
    std::istringstream lines(scrape);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return std::nullopt;
}

double metric_value(const std::string& scrape, const std::string& series) {
    auto v = sample_value(scrape, series);
    INFO(series << " in\n" << scrape);
    REQUIRE(v);
    return *v;
}

void check_promtool_accepts(const std::string& scrape) {
    auto check = run_command({"/usr/bin/promtool", "check", "metrics"}, scrape);
    INFO("promtool:\n" << check.out << check.err << "\nscrape:\n" << scrape);
    REQUIRE(check.exit_code == 0);
    CHECK(check.err.empty());
}

Load::Load(net::Endpoint endpoint, std::string stream, std::uint64_t first_id)
    : endpoint_(std::move(endpoint)), stream_(std::move(stream)), first_id_(first_id) {
    thread_ = std::thread([this] { run(); });
}

Load::~Load() {
    stop();
}

const std::vector<Load::Batch>& Load::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return batches_;
}

// No Catch2 macros here: they are not thread-safe.
void Load::run() {
    net::ClientOptions options;
    options.endpoint = endpoint_;
    auto client = net::Client::connect(options);
    if (!client) return;
    std::deque<Batch> flight;  // stable addresses for the callbacks
    std::uint64_t id = first_id_;
    std::vector<std::string> payloads;
    auto settle = [&](std::size_t keep) {
        (void)(*client)->run_until(
            [&] {
                while (!flight.empty() && flight.front().result) {
                    batches_.push_back(std::move(flight.front()));
                    flight.pop_front();
                }
                return flight.size() <= keep;
            },
            std::chrono::seconds(30));
    };
    while (!stop_.load()) {
        Batch& b = flight.emplace_back();
        std::vector<core::EventDraft> events;
        payloads.clear();
        for (int k = 0; k < 10; ++k, ++id) {
            b.ids.push_back(event_id(id));
            payloads.push_back(fmt::format("{}-{}", stream_, id));
        }
        for (std::size_t k = 0; k < b.ids.size(); ++k) {
            events.push_back({b.ids[k], "t", {}, core::as_bytes(payloads[k])});
        }
        (*client)->publish_async(stream_, events, {},
                                 [this, &b](core::Result<net::PublishReceipt> r) {
                                     b.acked_at = std::chrono::steady_clock::now();
                                     if (r) ++acked_;
                                     b.result = std::move(r);
                                 });
        settle(7);
    }
    settle(0);
    for (Batch& b : flight) batches_.push_back(std::move(b));
}

}  // namespace spirit::test
