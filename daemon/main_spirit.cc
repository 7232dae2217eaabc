// spirit: the command-line client (see daemon/cli.h).
#include "daemon/cli.h"

int main(int argc, char** argv) {
    return spirit::daemon::run_cli(argc, argv);
}
