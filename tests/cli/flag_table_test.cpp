// The flag table (tools/hone/flags.h) against the command tree the program really builds: every
// flag is declared once, no spelling or environment variable twice, every command's options come
// from the table, and values a flag cannot take are rejected (the llama.cpp test-arg-parser idea).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "app.h"
#include "flags.h"

namespace hone::cli {
namespace {

std::vector<std::string> spellings(const std::string& names) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= names.size()) {
    const auto comma = names.find(',', start);
    out.push_back(names.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// How CLI11 spells an option: "-b", "--batch", or a positional's name.
std::set<std::string> spellings_of(const CLI::Option& option) {
  std::set<std::string> out;
  for (const auto& s : option.get_snames()) out.insert("-" + s);
  for (const auto& l : option.get_lnames()) out.insert("--" + l);
  if (out.empty()) out.insert(option.get_name());
  return out;
}

std::vector<const CLI::App*> commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

TEST(FlagTableTest, NoSpellingOptionOrEnvironmentVariableIsDeclaredTwice) {
  std::map<std::string, const char*> spelled, envs, options;
  for (const Flag* flag : flags::kAll) {
    ASSERT_NE(flag->help, nullptr);
    EXPECT_GT(std::string(flag->help).size(), 5u) << flag->names;
    ASSERT_NE(flag->option, nullptr) << flag->names;
    EXPECT_TRUE(options.emplace(flag->option, flag->names).second)
        << "option " << flag->option << " is set by " << options[flag->option] << " and " << flag->names;
    for (const auto& s : spellings(flag->names)) {
      EXPECT_TRUE(spelled.emplace(s, flag->names).second)
          << "'" << s << "' is declared by " << spelled[s] << " and " << flag->names;
    }
    if (flag->env != nullptr) {
      EXPECT_TRUE(envs.emplace(flag->env, flag->names).second) << flag->env << " is used twice";
    }
  }
  EXPECT_GE(spelled.size(), 50u);
}

TEST(FlagTableTest, EveryOptionOfEveryCommandComesFromTheTableAndEveryFlagIsUsed) {
  const auto app = make_app();
  std::map<std::set<std::string>, const Flag*> table;
  for (const Flag* flag : flags::kAll) {
    const auto s = spellings(flag->names);
    table[std::set<std::string>(s.begin(), s.end())] = flag;
  }
  std::set<const Flag*> used;
  for (const CLI::App* command : commands(*app)) {
    for (const CLI::Option* option : command->get_options()) {
      const auto s = spellings_of(*option);
      if (s.count("--help") != 0) continue;  // CLI11's own
      const auto it = table.find(s);
      ASSERT_NE(it, table.end()) << "hone " << command->get_name() << " declares " << option->get_name()
                                 << " outside the flag table";
      used.insert(it->second);
      // The per-command help is what the command shows.
      EXPECT_EQ(option->get_description(), help_for(*it->second, command->get_name())) << option->get_name();
    }
  }
  for (const Flag* flag : flags::kAll) EXPECT_TRUE(used.count(flag) != 0) << flag->names << " is used by no command";
}

TEST(FlagTableTest, NumericFlagsRejectValuesThatAreNotNumbers) {
  int checked = 0;
  const auto probe = make_app();
  for (const CLI::App* command : commands(*probe)) {
    for (const CLI::Option* option : command->get_options()) {
      const std::string type = option->get_type_name();
      if (option->get_lnames().empty() || (type != "INT" && type != "FLOAT" && type != "UINT")) continue;
      const auto app = make_app();  // a fresh tree: parse results stick to options
      const std::string flag = "--" + option->get_lnames().front();
      std::vector<std::string> args = {"not-a-number", flag, command->get_name()};  // CLI11 parses a reversed vector
      EXPECT_THROW(app->parse(args), CLI::ParseError) << "hone " << command->get_name() << " " << flag;
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);
}

TEST(FlagTableTest, LibraryOptionsMapBackToTheirFlags) {
  EXPECT_EQ(flag_for_option("epochs"), "--epochs");
  EXPECT_EQ(flag_for_option("cuda_graphs"), "--cuda-graphs");
  EXPECT_EQ(flag_for_option("output"), "--out");
  EXPECT_EQ(flag_for_option("no_such_option"), "");
}

}  // namespace
}  // namespace hone::cli
