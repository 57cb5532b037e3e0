#include "hone/train/train_state.h"

#include "hone/core/error.h"
#include "hone/run/checkpoint.h"

namespace hone::train {

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"steps", r.steps},
          {"train_loss", r.train_loss},
          {"first_step_loss", r.first_step_loss},
          {"learning_rate", r.learning_rate},
          {"seconds", r.seconds},
          {"skipped_steps", r.skipped_steps},
          {"loss_scale", r.loss_scale},
          {"val", r.val.to_json()}};
}

nlohmann::json to_json(const TrainState& s) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : s.history) history.push_back(to_json(r));
  return {{"epochs_done", s.epochs_done}, {"global_step", s.global_step}, {"best_epoch", s.best_epoch},
          {"best_score", s.best_score},   {"history", history},           {"scaler", s.scaler}};
}

namespace {

EvalMetrics metrics_from_json(const nlohmann::json& j) {
  EvalMetrics m;
  m.split = j.at("split").get<std::string>();
  m.samples = j.at("samples").get<std::int64_t>();
  m.loss = j.at("loss").get<double>();
  if (j.contains("accuracy")) m.accuracy = j.at("accuracy").get<double>();
  if (j.contains("rmse")) {
    m.mae = j.at("mae").get<double>();
    m.rmse = j.at("rmse").get<double>();
    m.naive_mae = j.at("naive_mae").get<double>();
    m.naive_rmse = j.at("naive_rmse").get<double>();
  }
  return m;
}

TrainState parse_train_state(const nlohmann::json& j) {
  TrainState s;
  s.epochs_done = j.at("epochs_done").get<int>();
  s.global_step = j.at("global_step").get<std::int64_t>();
  s.best_epoch = j.at("best_epoch").get<int>();
  s.best_score = j.at("best_score").get<double>();
  for (const auto& r : j.at("history")) {
    EpochRecord e;
    e.epoch = r.at("epoch").get<int>();
    e.steps = r.at("steps").get<std::int64_t>();
    e.train_loss = r.at("train_loss").get<double>();
    e.first_step_loss = r.at("first_step_loss").get<double>();
    e.learning_rate = r.at("learning_rate").get<double>();
    e.seconds = r.at("seconds").get<double>();
    e.skipped_steps = r.value("skipped_steps", std::int64_t{0});
    e.loss_scale = r.value("loss_scale", 1.0);
    e.val = metrics_from_json(r.at("val"));
    s.history.push_back(e);
  }
  s.scaler = j.value("scaler", nlohmann::json());
  return s;
}

}  // namespace

TrainState train_state_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    return parse_train_state(j);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed checkpoint state: {}", source, e.what());
  }
}

void save_checkpoint(const std::filesystem::path& run_dir, const torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state) {
  run::save_checkpoint(run_dir, model, optimizer.state(), to_json(state));
}

TrainState load_checkpoint(const std::filesystem::path& run_dir, torch::nn::Module& model, Optimizer& optimizer) {
  io::NamedTensors optimizer_state;
  const nlohmann::json state = run::load_checkpoint(run_dir, model, optimizer_state);
  const std::string source = (run_dir / "checkpoint" / "optimizer.safetensors").string();
  try {
    optimizer.load_state(optimizer_state);
  } catch (const Error& e) {
    fail("{}: {} (was the run trained with another optimizer?)", source, e.what());
  }
  return train_state_from_json(state, (run_dir / "checkpoint" / "state.json").string());
}

}  // namespace hone::train
