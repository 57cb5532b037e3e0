#include "hone/run/checkpoint.h"

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/run/run_dir.h"

namespace hone::run {
namespace fs = std::filesystem;
namespace {

constexpr const char* kEpochKey = "hone_epoch";

std::int64_t epoch_of(const nlohmann::json& state, const fs::path& source) {
  if (!state.is_object() || !state.contains("epochs_done") || !state["epochs_done"].is_number_integer())
    fail("{}: checkpoint state has no integer 'epochs_done'", source.string());
  return state["epochs_done"].get<std::int64_t>();
}

}  // namespace

bool has_checkpoint(const fs::path& run_dir) {
  std::error_code ec;
  return fs::is_regular_file(run_dir / "checkpoint" / "state.json", ec);
}

void save_checkpoint(const fs::path& run_dir, const torch::nn::Module& model, const io::NamedTensors& optimizer_state,
                     const nlohmann::json& state) {
  const fs::path checkpoint = run_dir / "checkpoint";
  const std::int64_t epochs_done = epoch_of(state, checkpoint / "state.json");
  const std::string tag = std::to_string(epochs_done);
  io::NamedTensors detached;
  for (const auto& [name, tensor] : optimizer_state) detached.emplace_back(name, tensor.detach());
  // The three files replace the previous checkpoint together: a save killed half-way leaves the
  // previous epoch's checkpoint whole (tests/reliability: weights of epoch N+1 beside a state.json
  // of epoch N would load neither).
  write_directory_atomic(checkpoint, [&](const fs::path& dir) {
    save_weights(dir / "weights.safetensors", model, {{kEpochKey, tag}});
    io::save_safetensors(dir / "optimizer.safetensors", detached, {{kEpochKey, tag}});
    write_file_atomic(dir / "state.json", state.dump(2) + "\n");
  });
}

nlohmann::json load_checkpoint(const fs::path& run_dir, torch::nn::Module& model, io::NamedTensors& optimizer_state) {
  const fs::path dir = run_dir / "checkpoint";
  if (!has_checkpoint(run_dir))
    fail("no checkpoint to resume in '{}' ({} is missing)", run_dir.string(), (dir / "state.json").string());
  const nlohmann::json state = read_json_file(dir / "state.json");
  const std::int64_t epochs_done = epoch_of(state, dir / "state.json");
  const std::string tag = std::to_string(epochs_done);
  const auto metadata = load_weights(dir / "weights.safetensors", model);
  auto it = metadata.find(kEpochKey);
  HONE_CHECK(it != metadata.end() && it->second == tag, "{}: weights are from epoch {} but state.json says epoch {}",
             (dir / "weights.safetensors").string(), it == metadata.end() ? std::string("?") : it->second, epochs_done);
  const fs::path opt_path = dir / "optimizer.safetensors";
  std::error_code ec;
  if (!fs::is_regular_file(opt_path, ec)) {
    fail("{} is missing{}", opt_path.string(),
         fs::is_regular_file(dir / "optimizer.pt", ec) ? " (this checkpoint is from an older hone: start a new run)"
                                                       : "");
  }
  io::SafetensorsContents contents = io::load_safetensors(opt_path);
  auto tagged = contents.metadata.find(kEpochKey);
  HONE_CHECK(tagged != contents.metadata.end() && tagged->second == tag, "{}: optimizer state is not from epoch {}",
             opt_path.string(), epochs_done);
  optimizer_state = std::move(contents.tensors);
  return state;
}

}  // namespace hone::run
