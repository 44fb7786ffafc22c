#include "cli/manual.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0"
#endif

namespace ferry::cli {

namespace {

const char kSeeAlsoDocs[] =
    "/usr/share/doc/ferry/README.md and /usr/share/doc/ferry/operations.md: setting up, running "
    "and watching ferryd.";

}  // namespace

ManPageInfo FerryManual() {
  ManPageInfo info;
  info.section = "1";
  info.version = "ferry " FERRY_VERSION;
  info.sections = {
      {"ENVIRONMENT",
       ".TP\n.B FERRY_SOCKET\nferryd's API socket, when \\fB\\-\\-socket\\fR is not given."},
      {"EXIT STATUS", "0 when the command did what it says; 1 with one line on standard error "
                      "naming what failed and what to do."},
      {"FILES", ".TP\n.I /var/lib/ferry/ferryd.sock\nferryd's API socket (root only, mode 0600)."},
      {"SEE ALSO", ".BR ferryd (8)\n.PP\n" + std::string(kSeeAlsoDocs)},
  };
  return info;
}

ManPageInfo FerrydManual() {
  ManPageInfo info;
  info.section = "8";
  info.version = "ferry " FERRY_VERSION;
  info.sections = {
      {"SIGNALS", "SIGTERM and SIGINT stop ferryd; the VMs it runs keep running, and the next "
                  "ferryd on the same state directory re-adopts them."},
      {"SYSTEMD",
       "ferryd speaks the notify protocol: READY=1 once its API answers and every VM left "
       "running is re-adopted, WATCHDOG=1 at half of WatchdogSec=, STOPPING=1 when it stops. "
       "With JOURNAL_STREAM set its log lines carry no time stamps (the journal adds them). The "
       "package's unit is ferryd.service: \\fBsystemctl enable \\-\\-now ferryd\\fR."},
      {"FILES",
       ".TP\n.I /var/lib/ferry\nthe state directory (root, 0700): the registry, VM directories, "
       "snapshots, the API socket.\n.TP\n.I /dev/shm/ferry\nguest RAM files (root, 0700).\n"
       ".TP\n.I /usr/lib/ferry/images\nthe default guest image."},
      {"SEE ALSO", ".BR ferry (1),\n.BR systemctl (1)\n.PP\n" + std::string(kSeeAlsoDocs)},
  };
  return info;
}

}  // namespace ferry::cli
