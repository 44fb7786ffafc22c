#include "cli/self_description.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>
#include <sstream>

namespace ferry::cli {

namespace {

bool Hidden(const CLI::App* app) { return app->get_group().empty(); }
bool Hidden(const CLI::Option* opt) { return opt->get_group().empty(); }

std::vector<const CLI::App*> Commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !Hidden(sub); });
}

std::vector<const CLI::Option*> Flags(const CLI::App& app) {
  return app.get_options(
      [](const CLI::Option* o) { return !Hidden(o) && o->nonpositional(); });
}

// A command's options for its man page: the same -h/--help on every command is said once.
std::vector<const CLI::Option*> DocumentedFlags(const CLI::App& app) {
  std::vector<const CLI::Option*> out;
  for (const CLI::Option* o : Flags(app)) {
    if (o != app.get_help_ptr() || app.get_parent() == nullptr) out.push_back(o);
  }
  return out;
}

std::vector<const CLI::Option*> Positionals(const CLI::App& app) {
  return app.get_options(
      [](const CLI::Option* o) { return !Hidden(o) && !o->nonpositional(); });
}

bool TakesValue(const CLI::Option* o) { return o->get_items_expected_max() > 0; }

// Text for roff: backslashes as \e, a line starting with "." or "'" protected by \&.
std::string RoffText(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') {
      out += "\\e";
    } else {
      out.push_back(c);
    }
    line_start = c == '\n';
  }
  return out;
}

// An option name or other literal where "-" must be a real minus sign (so it can be searched for
// and copied).
std::string RoffLiteral(const std::string& text) {
  std::string out;
  for (char c : RoffText(text)) {
    if (c == '-') {
      out += "\\-";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "VALUE" for an option's argument: the CLI11 type name (TEXT, INT, ...) without any validator
// description after it.
std::string ValueName(const CLI::Option* o) {
  std::string type = o->get_type_name();
  size_t cut = type.find_first_of(" :");
  if (cut != std::string::npos) type = type.substr(0, cut);
  return type.empty() ? "VALUE" : type;
}

// "\fB\-\-memory\fR \fIUINT\fR" for a .TP heading.
std::string OptionHeading(const CLI::Option* o) {
  std::string names;
  for (const auto& s : o->get_snames()) names += (names.empty() ? "" : ", ") + ("\\fB\\-" + s + "\\fR");
  for (const auto& l : o->get_lnames()) {
    names += (names.empty() ? "" : ", ") + ("\\fB" + RoffLiteral("--" + l) + "\\fR");
  }
  if (TakesValue(o)) names += " \\fI" + RoffText(ValueName(o)) + "\\fR";
  return names;
}

void OptionItems(std::ostream& out, const CLI::App& app) {
  for (const CLI::Option* o : Positionals(app)) {
    out << ".TP\n\\fI" << RoffText(Upper(o->get_name(true))) << "\\fR\n"
        << RoffText(o->get_description()) << (o->get_required() ? "" : " (optional)") << "\n";
  }
  for (const CLI::Option* o : DocumentedFlags(app)) {
    out << ".TP\n" << OptionHeading(o) << "\n" << RoffText(o->get_description());
    if (!o->get_default_str().empty()) {
      out << " (default: " << RoffText(o->get_default_str()) << ")";
    }
    out << "\n";
  }
}

// "NAME [FILE]" after a command's path: its positionals in order.
std::string Arguments(const CLI::App& app) {
  std::string args;
  for (const CLI::Option* o : Positionals(app)) {
    std::string name = Upper(o->get_name(true));
    args += " " + (o->get_required() ? name : "[" + name + "]");
  }
  if (!DocumentedFlags(app).empty()) args += " [OPTIONS]";
  return args;
}

// One .SS per command that does something, depth first, in the order the program added them.
void CommandSections(std::ostream& out, const CLI::App& app, const std::string& path) {
  for (const CLI::App* sub : Commands(app)) {
    const std::string sub_path = path + " " + sub->get_name();
    const bool has_verbs = !Commands(*sub).empty();
    if (!has_verbs || !Positionals(*sub).empty() || !DocumentedFlags(*sub).empty()) {
      out << ".SS \"" << RoffLiteral(sub_path + Arguments(*sub)) << "\"\n"
          << RoffText(sub->get_description()) << "\n";
      OptionItems(out, *sub);
    } else {
      out << ".SS \"" << RoffLiteral(sub_path + " COMMAND") << "\"\n"
          << RoffText(sub->get_description()) << "\n";
    }
    CommandSections(out, *sub, sub_path);
  }
}

// The program's one-line summary: its description after "name: ", if it starts so.
std::string Summary(const CLI::App& app) {
  std::string d = app.get_description();
  const std::string prefix = app.get_name() + ": ";
  if (d.rfind(prefix, 0) == 0) d = d.substr(prefix.size());
  return d;
}

// Bash words: names joined by spaces (none of ours need quoting; checked by the caller).
std::string Words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// Rows of the two tables of BashCompletion for `app` at `path` and every command below it:
// `tree` gets "[path]=commands|options", `valued` the options that take a value.
void CompletionTables(std::ostream& tree, std::ostream& valued, const std::string& program,
                      const CLI::App& app, const std::string& path) {
  std::vector<std::string> verbs, options;
  for (const CLI::App* sub : Commands(app)) verbs.push_back(sub->get_name());
  for (const CLI::Option* o : Flags(app)) {
    for (const auto& l : o->get_lnames()) {
      options.push_back("--" + l);
      if (TakesValue(o)) valued << "_" << program << "_valued[\"" << path << " --" << l << "\"]=1\n";
    }
  }
  tree << "  [\"" << path << "\"]=\"" << Words(verbs) << "|" << Words(options) << "\"\n";
  for (const CLI::App* sub : Commands(app)) {
    CompletionTables(tree, valued, program, *sub, path + " " + sub->get_name());
  }
}

}  // namespace

std::string ManPage(const CLI::App& app, const ManPageInfo& info) {
  std::ostringstream out;
  const std::string name = app.get_name();
  out << ".\\\" Generated by `" << name << " --help-man` from its own command tree.\n"
      << ".TH " << Upper(name) << " " << info.section << " \"\" \"" << RoffText(info.version)
      << "\" \"" << (info.section == "8" ? "System Administration" : "User Commands") << "\"\n"
      // Paths and option names are not to be hyphenated or stretched.
      << ".nh\n.ad l\n"
      << ".SH NAME\n" << RoffLiteral(name) << " \\- " << RoffText(Summary(app)) << "\n"
      << ".SH SYNOPSIS\n.B " << RoffLiteral(name) << "\n"
      << RoffLiteral(Commands(app).empty() ? "[OPTIONS]" : "[OPTIONS] COMMAND [ARGS]") << "\n"
      << ".SH DESCRIPTION\n" << RoffText(app.get_description()) << "\n";
  if (!DocumentedFlags(app).empty() || !Positionals(app).empty()) {
    out << ".SH OPTIONS\n";
    OptionItems(out, app);
  }
  if (!Commands(app).empty()) {
    out << ".SH COMMANDS\nEvery command takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR: its part of this page "
           "on the terminal.\n";
    CommandSections(out, app, name);
  }
  for (const auto& [title, text] : info.sections) out << ".SH " << title << "\n" << text << "\n";
  return out.str();
}

std::string BashCompletion(const CLI::App& app) {
  const std::string n = app.get_name();
  std::ostringstream out;
  out << "# bash completion for " << n << ", generated by `" << n
      << " --bash-completion` from its own command tree.\n"
      << "declare -gA _" << n << "_valued=()\n";
  std::ostringstream tree, valued;
  CompletionTables(tree, valued, n, app, n);
  out << valued.str() << "# \"path\"=\"its commands|its options\"\n"
      << "declare -gA _" << n << "_tree=(\n" << tree.str() << ")\n"
      << "_" << n << "() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path=" << n
      << " i w\n"
      << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      << "    w=${COMP_WORDS[i]}\n"
      << "    if [[ $w == -* ]]; then\n"
      << "      [[ $w != *=* && -n ${_" << n << "_valued[\"$path $w\"]} ]] && ((i++))\n"
      << "      continue\n"
      << "    fi\n"
      << "    [[ -n ${_" << n << "_tree[\"$path $w\"]+x} ]] && path=\"$path $w\"\n"
      << "  done\n"
      << "  if [[ $prev == -* && -n ${_" << n << "_valued[\"$path $prev\"]} ]]; then\n"
      << "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      << "    return\n"
      << "  fi\n"
      << "  local entry=${_" << n << "_tree[\"$path\"]}\n"
      << "  if [[ $cur == -* ]]; then\n"
      << "    COMPREPLY=($(compgen -W \"${entry#*|}\" -- \"$cur\"))\n"
      << "  else\n"
      << "    COMPREPLY=($(compgen -W \"${entry%%|*}\" -- \"$cur\"))\n"
      << "  fi\n"
      << "}\n"
      << "complete -F _" << n << " " << n << "\n";
  return out.str();
}

void AddSelfDescriptionFlags(CLI::App& app, const ManPageInfo& info) {
  app.add_flag_callback(
         "--help-man",
         [&app, info] {
           std::cout << ManPage(app, info);
           throw CLI::Success();
         },
         "print this program's man page (roff)")
      ->group("");
  app.add_flag_callback(
         "--bash-completion",
         [&app] {
           std::cout << BashCompletion(app);
           throw CLI::Success();
         },
         "print this program's bash completion script")
      ->group("");
}

}  // namespace ferry::cli
