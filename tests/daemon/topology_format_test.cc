// What `spirit topology` prints (daemon/cli/topology_format.h): the text of
// a master's reply and of a slave's, checked line by line where an operator
// reads them; the JSON object's fields; and each `$topology` event kind as
// --follow prints it, as text and as JSON, against exact lines.
#include <catch2/catch.hpp>

#include "daemon/cli/topology_format.h"

using namespace spirit;
namespace proto = core::protocol;
using Catch::Matchers::Contains;
using daemon::cli::topology_event_json;
using daemon::cli::topology_event_text;

namespace {

proto::TopologyReply master_reply() {
    proto::TopologyReply t;
    t.node_id = "node-a";
    t.role = "master";
    t.epoch = core::Epoch{7};
    t.master = "node-a";
    t.state = "serving";
    t.members = {
        {"node-a", "127.0.0.1:7801", "data", true, true, std::nullopt, 0xab, 2, core::Epoch{7}, ""},
        {"node-b", "127.0.0.1:7802", "data", false, true, 12, 0xcd, 1, core::Epoch{7}, "connected"},
        {"node-c", "127.0.0.1:7803", "witness", false, false, 5200, 0, 0, core::Epoch{0},
         "unreachable: connection refused"}};
    t.groups = {{"default", core::Epoch{7}, "node-a", ""}};
    t.positions_source = "master";
    t.positions = {{"node-b", "orders", core::Seq{990}, core::Epoch{7}, 10, "replicating"},
                   {"node-a", "orders", core::Seq{1000}, core::Epoch{7}, 0, "master"}};
    t.positions_total = 2;
    t.sublogs = {{"node-a", 0xab, 15, core::TimestampNs{1'700'000'000'000'000'000}}};
    t.topology_events = 15;
    return t;
}

core::TopologyEvent event(core::TopologyBody body) {
    return core::TopologyEvent{
        {{core::NodeId("node-b"), 0x0123456789abcdef}, 3}, core::TimestampNs{0}, std::move(body)};
}

}  // namespace

TEST_CASE("spirit topology prints the node, the group's master, members and positions",
          "[daemon][unit]") {
    const std::string text = daemon::cli::topology_text(master_reply());
    INFO(text);
    CHECK_THAT(text, Contains("node            node-a (master, epoch 7)\n"));
    CHECK_THAT(text, Contains("master          node-a\n"));
    CHECK_THAT(text, Contains("group           default: master node-a, elected in epoch 7\n"));
    CHECK_THAT(text, Contains("node-a          data     127.0.0.1:7801         -         2       "
                              "     7      this node\n"));
    CHECK_THAT(text, Contains("node-b          data     127.0.0.1:7802         12 ms     1       "
                              "     7      connected\n"));
    CHECK_THAT(text, Contains("node-c          witness  127.0.0.1:7803         5.2 s     0       "
                              "     0      unreachable: connection refused\n"));
    CHECK_THAT(text, Contains("POSITIONS       the master's view of every copy (2)\n"));
    CHECK_THAT(text, Contains("orders          node-b          990          7          10      "
                              "     replicating\n"));
    CHECK_THAT(text, Contains("$topology       15 events, 0 refused\n"));
    CHECK_THAT(text, Contains("node-a          ~00000000000000ab  15 events, the last at "
                              "2023-11-14T22:13:20.000000000Z\n"));

    proto::TopologyReply slave = master_reply();
    slave.node_id = "node-b";
    slave.role = "slave";
    slave.master = "";
    slave.groups = {{"default", core::Epoch{7}, "", "no master elected yet"}};
    slave.positions_source = "self";
    slave.positions = {{"node-b", "orders", core::Seq{990}, core::Epoch{7}, std::nullopt, "own"}};
    slave.positions_total = 1;
    const std::string s = daemon::cli::topology_text(slave);
    INFO(s);
    CHECK_THAT(s, Contains("master          not known\n"));
    CHECK_THAT(s, Contains("group           default: no master: no master elected yet\n"));
    CHECK_THAT(s, Contains("this node's own copies (the master tracks the others) (1)\n"));
    CHECK_THAT(s, Contains("orders          node-b          990          7          ?       "
                           "     own\n"));
}

TEST_CASE("spirit topology --json names every field, nulls for what is unknown", "[daemon][unit]") {
    const std::string json = daemon::cli::topology_json(master_reply());
    INFO(json);
    CHECK_THAT(json, Contains("{\"node\":\"node-a\",\"role\":\"master\",\"epoch\":7,"
                              "\"master\":\"node-a\",\"state\":\"serving\",\"members\":[{"));
    CHECK_THAT(json, Contains("{\"node\":\"node-a\",\"address\":\"127.0.0.1:7801\",\"role\":"
                              "\"data\",\"self\":true,\"linked\":true,\"heard_ms\":null,"
                              "\"instance\":\"00000000000000ab\",\"incarnation\":2,\"voted\":7,"
                              "\"link\":null}"));
    CHECK_THAT(json, Contains("\"instance\":null,\"incarnation\":0"));
    CHECK_THAT(json, Contains("\"groups\":[{\"group\":\"default\",\"epoch\":7,\"master\":"
                              "\"node-a\",\"why\":null}]"));
    CHECK_THAT(json, Contains("\"positions_source\":\"master\",\"positions_total\":2"));
    CHECK_THAT(json, Contains("{\"stream\":\"orders\",\"node\":\"node-b\",\"seq\":990,"
                              "\"confirmed\":7,\"lag_events\":10,\"state\":\"replicating\"}"));
    CHECK_THAT(json, Contains("\"topology_events\":15,\"topology_refused\":0,"
                              "\"last_refusal\":null,\"sublogs\":[{\"node\":\"node-a\","
                              "\"instance\":\"00000000000000ab\",\"events\":15,"
                              "\"last\":\"2023-11-14T22:13:20.000000000Z\"}],\"conflicts\":[]}"));
}

TEST_CASE("spirit topology --follow prints each event kind on one line", "[daemon][unit]") {
    namespace topo = core::topo;
    using Row = std::tuple<core::TopologyBody, std::string, std::string>;
    const std::string head = "     9  1970-01-01T00:00:00.000000000Z  node-b/3  ";
    const std::string json_head =
        "{\"seq\":9,\"ts\":\"1970-01-01T00:00:00.000000000Z\",\"author\":\"node-b\","
        "\"instance\":\"0123456789abcdef\",\"author_seq\":3,";
    auto [body, text, json] = GENERATE(table<core::TopologyBody, std::string, std::string>({
        Row{topo::NodeStarted{4, true}, "node_started  incarnation=4 witness=yes",
            "\"kind\":\"node_started\",\"incarnation\":4,\"witness\":true}"},
        Row{topo::Voted{"default", core::Epoch{5}, core::NodeId("node-c")},
            "voted  group=default epoch=5 candidate=node-c",
            "\"kind\":\"voted\",\"group\":\"default\",\"epoch\":5,\"candidate\":\"node-c\"}"},
        Row{topo::MasterElected{
                "default", core::Epoch{5}, {core::NodeId("node-b"), core::NodeId("node-c")}},
            "master_elected  group=default epoch=5 voters=node-b,node-c",
            "\"kind\":\"master_elected\",\"group\":\"default\",\"epoch\":5,"
            "\"voters\":[\"node-b\",\"node-c\"]}"},
        Row{topo::SteppedDown{"default", core::Epoch{5}, "restarted"},
            "stepped_down  group=default epoch=5 reason=\"restarted\"",
            "\"kind\":\"stepped_down\",\"group\":\"default\",\"epoch\":5,"
            "\"reason\":\"restarted\"}"},
        Row{topo::StreamCompleted{"orders", core::Epoch{5}, core::Seq{100}},
            "stream_completed  stream=orders epoch=5 seq=100",
            "\"kind\":\"stream_completed\",\"stream\":\"orders\",\"epoch\":5,\"seq\":100}"},
        Row{topo::SuffixQuarantined{"orders", core::Epoch{5}, core::Seq{90}, 10},
            "suffix_quarantined  stream=orders epoch=5 after_seq=90 count=10",
            "\"kind\":\"suffix_quarantined\",\"stream\":\"orders\",\"epoch\":5,"
            "\"after_seq\":90,\"count\":10}"},
        Row{topo::StreamCreated{
                "orders",
                core::Epoch{5},
                {core::Redundancy::immediate, {core::Acks::Kind::all, 0}, {7, 0, 0}}},
            "stream_created  stream=orders epoch=5 redundancy=immediate acks=all "
            "retention_events_max=7 retention_bytes_max=0 retention_age_ms_max=0",
            "\"kind\":\"stream_created\",\"stream\":\"orders\",\"epoch\":5,"
            "\"redundancy\":\"immediate\",\"acks\":\"all\",\"retention_events_max\":7,"
            "\"retention_bytes_max\":0,\"retention_age_ms_max\":0}"},
        Row{topo::StreamDeleted{"orders", core::Epoch{6}}, "stream_deleted  stream=orders epoch=6",
            "\"kind\":\"stream_deleted\",\"stream\":\"orders\",\"epoch\":6}"},
        Row{topo::StreamPolicyChanged{
                "orders", core::Epoch{6}, {core::Redundancy::eventual, {}, {0, 0, 3600000}}},
            "stream_policy_changed  stream=orders epoch=6 redundancy=eventual acks=majority "
            "retention_events_max=0 retention_bytes_max=0 retention_age_ms_max=3600000",
            "\"kind\":\"stream_policy_changed\",\"stream\":\"orders\",\"epoch\":6,"
            "\"redundancy\":\"eventual\",\"acks\":\"majority\",\"retention_events_max\":0,"
            "\"retention_bytes_max\":0,\"retention_age_ms_max\":3600000}"},
    }));
    CHECK(topology_event_text(core::Seq{9}, event(body)) == head + text);
    CHECK(topology_event_json(core::Seq{9}, event(body)) == json_head + json);
}
