// daemon/cli.h: the spirit command-line client.
//
// Exit codes a script can rely on:
//   0  success
//   1  the daemon refused or failed the request (the message says why)
//   2  bad command line
//   3  verify found a broken chain
//   4  cannot connect, or the connection was lost
//   5  timed out
#pragma once

namespace spirit::daemon {

int run_cli(int argc, char** argv);

}  // namespace spirit::daemon
