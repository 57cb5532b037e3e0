// hone_fuzz_replay NAME PATH...: runs harness NAME over every file in the PATHs (files or folders,
// not recursive), each in this process as libFuzzer would. Exit 0 when every input was handled;
// an input that breaks a reader aborts, naming the file first; a corpus none of whose inputs a
// reader accepts fails (its seeds would not exercise the parsing past the first check).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz_target.h"

namespace {

std::map<std::string, hone::fuzz::TargetFunction>& targets() {
  static std::map<std::string, hone::fuzz::TargetFunction> table;
  return table;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

bool hone::fuzz::register_target(const char* name, TargetFunction function) {
  targets()[name] = function;
  return true;
}

int main(int argc, char** argv) {
  if (argc < 3 || !targets().count(argv[1])) {
    std::cerr << "usage: hone_fuzz_replay NAME PATH...\nharnesses:";
    for (const auto& [name, function] : targets()) std::cerr << ' ' << name;
    std::cerr << '\n';
    return 2;
  }
  const auto function = targets()[argv[1]];
  std::vector<std::filesystem::path> inputs;
  for (int i = 2; i < argc; ++i) {
    const std::filesystem::path path = argv[i];
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path))
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    } else if (std::filesystem::is_regular_file(path)) {
      inputs.push_back(path);
    } else {
      std::cerr << "hone_fuzz_replay: " << path << " is neither a file nor a folder\n";
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::cerr << "hone_fuzz_replay: no inputs in the given paths\n";
    return 2;
  }
  for (const auto& path : inputs) {
    std::cerr << "replay " << argv[1] << ": " << path.string() << '\n';
    const std::string bytes = read_file(path);
    function(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::cout << "hone_fuzz_replay " << argv[1] << ": " << inputs.size() << " inputs, no finding; reader calls "
            << hone::fuzz::accepted_calls << " accepted, " << hone::fuzz::rejected_calls << " rejected\n";
  if (hone::fuzz::accepted_calls == 0) {
    std::cerr << "hone_fuzz_replay: no input was accepted: the seeds never reach the reader's success path\n";
    return 1;
  }
  return 0;
}
