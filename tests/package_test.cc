// The .deb as an operator gets it: built by CPack from this build tree, checked by lintian (no
// errors), installed by the real dpkg into a scratch root (dpkg --root, the maintainer scripts
// run chrootless with DPKG_ROOT set), then looked at from the outside: the files and their modes,
// the state and RAM directories postinst made, the man pages as man renders them, the bash
// completion as bash runs it, the unit as systemd-analyze reads it; and a purge takes the state
// directory away. One process (ctest label "package"): the package is built once.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "harness/command.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

namespace fs = std::filesystem;

std::string Shell(const std::string& script, CommandResult* result = nullptr) {
  CommandResult r = RunCommand({"bash", "-c", script});
  if (result) *result = r;
  return r.out;
}

class PackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = fs::temp_directory_path() / ("ferry-package-" + std::to_string(::getpid()));
    fs::remove_all(scratch_);
    fs::create_directories(scratch_ / "out");
    CommandResult r = RunCommand({"cpack", "-G", "DEB", "--config",
                                  std::string(FERRY_BUILD_DIR) + "/CPackConfig.cmake", "-B",
                                  (scratch_ / "out").string()});
    if (r.exit_code != 0) {
      setup_error_ = "cpack failed: " + r.out + r.err;
      return;
    }
    for (const auto& e : fs::directory_iterator(scratch_ / "out")) {
      if (e.path().extension() == ".deb") deb_ = e.path().string();
    }
    if (deb_.empty()) setup_error_ = "cpack made no .deb: " + r.out;
    // An empty dpkg database in the scratch root; /dev/shm as on a running system.
    root_ = (scratch_ / "root").string();
    fs::create_directories(root_ + "/var/lib/dpkg/info");
    fs::create_directories(root_ + "/var/lib/dpkg/updates");
    fs::create_directories(root_ + "/dev/shm");
    Shell("touch " + root_ + "/var/lib/dpkg/status " + root_ + "/var/lib/dpkg/available");
  }
  static void TearDownTestSuite() { fs::remove_all(scratch_); }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  // dpkg ACTION into the scratch root; qemu is not in its (empty) database.
  static CommandResult Dpkg(const std::vector<std::string>& action) {
    std::vector<std::string> argv = {"dpkg", "--root=" + root_, "--force-script-chrootless",
                                     "--force-depends", "--log=/dev/null"};
    argv.insert(argv.end(), action.begin(), action.end());
    return RunCommand(argv);
  }

  static void Install() {
    if (installed_) return;
    CommandResult r = Dpkg({"-i", deb_});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    installed_ = true;
  }

  static inline fs::path scratch_;
  static inline std::string deb_;
  static inline std::string root_;
  static inline std::string setup_error_;
  static inline bool installed_ = false;
};

TEST_F(PackageTest, LintianReportsNoErrors) {
  CommandResult r = RunCommand({"lintian", "--fail-on", "error", "--tag-display-limit", "0", deb_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("\nE: "), std::string::npos) << r.out;
  // What remains (warnings, information) is in the log for the report.
  std::cout << "lintian on " << fs::path(deb_).filename().string() << ":\n" << r.out << r.err;
}

TEST_F(PackageTest, InstallsTheFilesAndMakesPrivateStateAndRamDirectories) {
  ASSERT_NO_FATAL_FAILURE(Install());
  for (const char* path : {"/usr/bin/ferry", "/usr/bin/ferryd"}) {
    struct stat st {};
    ASSERT_EQ(::stat((root_ + path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << path;
  }
  for (const char* path :
       {"/usr/lib/systemd/system/ferryd.service", "/usr/lib/ferry/images/default/image.json",
        "/usr/share/man/man1/ferry.1.gz", "/usr/share/man/man8/ferryd.8.gz",
        "/usr/share/bash-completion/completions/ferry", "/usr/share/doc/ferry/copyright",
        "/usr/share/doc/ferry/changelog.gz", "/usr/share/doc/ferry/operations.md"}) {
    EXPECT_TRUE(fs::is_regular_file(root_ + path)) << path;
  }
  // Every file the image's manifest names is there.
  std::string manifest = ReadFile(root_ + "/usr/lib/ferry/images/default/image.json");
  for (const char* file : {"vmlinux", "initramfs.cpio.gz"}) {
    if (manifest.find(std::string("\"") + file + "\"") == std::string::npos) continue;
    EXPECT_TRUE(fs::is_regular_file(root_ + "/usr/lib/ferry/images/default/" + file)) << file;
  }
  for (const char* dir : {"/var/lib/ferry", "/dev/shm/ferry"}) {
    struct stat st {};
    ASSERT_EQ(::stat((root_ + dir).c_str(), &st), 0) << dir << " was not made by postinst";
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << dir;
    EXPECT_EQ(st.st_uid, 0u) << dir;
    EXPECT_EQ(st.st_gid, 0u) << dir;
  }
  // The installed programs run (ferry links libstdc++ statically; ferryd uses the host's).
  CommandResult help = RunCommand({root_ + "/usr/bin/ferry", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("snapshot"), std::string::npos) << help.out;
  help = RunCommand({root_ + "/usr/bin/ferryd", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
}

TEST_F(PackageTest, ManPagesRenderWithoutWarningsAndListTheCommands) {
  ASSERT_NO_FATAL_FAILURE(Install());
  for (const std::string page : {"man1/ferry.1.gz", "man8/ferryd.8.gz"}) {
    const std::string file = root_ + "/usr/share/man/" + page;
    CommandResult r;
    Shell("zcat " + file + " | groff -man -Tutf8 -ww -z", &r);
    EXPECT_EQ(r.exit_code, 0) << page;
    EXPECT_EQ(r.err, "") << page << ": groff warnings";
    // The NAME line man-db's whatis index is built from.
    CommandResult whatis = RunCommand({"lexgrog", file});
    EXPECT_EQ(whatis.exit_code, 0) << whatis.out << whatis.err;
  }
  const std::string text =
      Shell("MANWIDTH=100 man -l " + root_ + "/usr/share/man/man1/ferry.1.gz | col -b");
  for (const char* want : {"ferry - snapshot, clone and migrate live QEMU VMs",
                           "ferry vm create NAME [OPTIONS]", "ferry clone SNAPSHOT [OPTIONS]",
                           "--count INT", "FERRY_SOCKET", "ferryd(8)"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << " not in:\n" << text;
  }
  const std::string ferryd = Shell("MANWIDTH=100 man -l " + root_ +
                                   "/usr/share/man/man8/ferryd.8.gz | col -b");
  EXPECT_NE(ferryd.find("--metrics-listen TEXT"), std::string::npos) << ferryd;
  EXPECT_NE(ferryd.find("READY=1"), std::string::npos) << ferryd;
}

// The verbs `ferry vm --help` lists under "Subcommands:".
std::set<std::string> VerbsFromHelp(const std::string& help) {
  std::set<std::string> verbs;
  std::istringstream in(help.substr(help.find("Subcommands:") + 12));
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 3 || line[0] != ' ' || line[2] == ' ') continue;  // not a wrapped line
    verbs.insert(line.substr(2, line.find(' ', 2) - 2));
  }
  return verbs;
}

TEST_F(PackageTest, BashCompletesFerryVmToTheVmVerbs) {
  ASSERT_NO_FATAL_FAILURE(Install());
  const std::string completion = root_ + "/usr/share/bash-completion/completions/ferry";
  CommandResult r;
  EXPECT_EQ(Shell("source " + completion + "; complete -p ferry", &r),
            "complete -F _ferry ferry\n")
      << r.err;
  const std::string offered = Shell("source " + completion +
                                    "; COMP_WORDS=(ferry vm ''); COMP_CWORD=2; _ferry; "
                                    "printf '%s\\n' \"${COMPREPLY[@]}\"");
  std::set<std::string> got;
  std::istringstream in(offered);
  for (std::string w; std::getline(in, w);) got.insert(w);
  const std::set<std::string> want =
      VerbsFromHelp(RunCommand({root_ + "/usr/bin/ferry", "vm", "--help"}).out);
  EXPECT_GE(want.size(), 5u);
  EXPECT_TRUE(want.count("create") && want.count("list")) << offered;
  EXPECT_EQ(got, want);
  // And an option of a verb after "-".
  EXPECT_NE(Shell("source " + completion +
                  "; COMP_WORDS=(ferry clone s1 --co); COMP_CWORD=3; _ferry; "
                  "echo \"${COMPREPLY[*]}\""),
            "")
      << "no option offered for `ferry clone s1 --co`";
}

TEST_F(PackageTest, TheUnitPassesSystemdAnalyzeVerify) {
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package systemd)";
  }
  ASSERT_NO_FATAL_FAILURE(Install());
  // The targets the unit orders itself against, as on the host (the scratch root has no
  // systemd of its own); then the unit and its ExecStart are checked inside that root.
  Shell("mkdir -p " + root_ + "/usr/lib/systemd/system && cp -a /usr/lib/systemd/system/*.target " +
        root_ + "/usr/lib/systemd/system/");
  CommandResult r = RunCommand({"systemd-analyze", "verify", "--root=" + root_, "ferryd.service"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  // It does read the unit: a mistake in it is reported.
  const std::string broken = root_ + "/usr/lib/systemd/system/ferryd-broken.service";
  Shell("sed 's/^Type=notify/Type=notifyy/' " + root_ + "/usr/lib/systemd/system/ferryd.service > " +
        broken);
  r = RunCommand({"systemd-analyze", "verify", "--root=" + root_, "ferryd-broken.service"});
  EXPECT_NE(r.out + r.err, "") << "systemd-analyze said nothing of Type=notifyy";
  fs::remove(broken);
}

TEST_F(PackageTest, PurgeRemovesTheStateDirectory) {
  ASSERT_NO_FATAL_FAILURE(Install());
  ASSERT_TRUE(fs::is_directory(root_ + "/var/lib/ferry"));
  CommandResult r = Dpkg({"--purge", "ferry"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  installed_ = false;
  EXPECT_FALSE(fs::exists(root_ + "/var/lib/ferry"));
  EXPECT_FALSE(fs::exists(root_ + "/usr/bin/ferry"));
}

}  // namespace
}  // namespace ferry::testing
