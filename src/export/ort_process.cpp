#include "ort_process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "ort_verify_script.h"  // generated: kOrtVerifyScript (ort_verify.py), kConfiguredPython

namespace hone::onnx::detail {
namespace {

/// The last `bytes` of the log, for an error message.
std::string tail(const std::filesystem::path& log, std::size_t bytes = 2000) {
  std::error_code ec;
  if (!std::filesystem::exists(log, ec)) return "(no log)";
  const std::string text = read_file(log);
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

}  // namespace

std::string verifier_python(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("HONE_PYTHON"); env != nullptr && *env != '\0') return env;
  return kConfiguredPython;
}

nlohmann::json run_verifier(const std::string& python, const std::filesystem::path& scratch,
                            const std::filesystem::path& model, const std::filesystem::path& inputs,
                            const std::filesystem::path& outputs, std::int64_t chunk) {
  const auto script = scratch / "ort_verify.py";
  const auto report = scratch / "report.json";
  const auto log = scratch / "verifier.log";
  write_file_atomic(script, kOrtVerifyScript);
  std::vector<std::string> args{python,           script.string(), model.string(),       inputs.string(),
                                outputs.string(), report.string(), std::to_string(chunk)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t child = fork();
  HONE_CHECK(child >= 0, "ONNX export: could not start the onnxruntime verifier (fork failed)");
  if (child == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    ::execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    HONE_CHECK(errno == EINTR, "ONNX export: waiting for the onnxruntime verifier failed");
  }
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    fail("ONNX export: the onnxruntime verifier ({} {}) failed ({}):\n{}", python, script.filename().string(),
         WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status)) : std::string("killed by a signal"),
         WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "the interpreter could not be run" : tail(log));
  }
  return nlohmann::json::parse(read_file(report));
}

}  // namespace hone::onnx::detail
