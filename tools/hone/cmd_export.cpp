// hone export: a run or zoo model as an ONNX file, verified through onnxruntime (docs/export.md).
#include <charconv>
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/export/export.h"

namespace hone::cli {
namespace {

struct ExportCommand {
  std::string target;
  std::string out;
  std::int64_t opset = 20;
  std::string dtype = "fp32";
  std::string batch_axis = "dynamic";
  bool no_verify = false;
  std::int64_t seq_len = 128;
  int threads = 0;
  bool json = false;
};

std::int64_t parse_batch_axis(const std::string& text) {
  if (text == "dynamic") return 0;
  std::int64_t size = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), size);
  if (error != std::errc() || end != text.data() + text.size() || size < 1) {
    fail_usage_option("batch_axis", "the batch axis must be 'dynamic' or a positive size, got '{}'", text);
  }
  return size;
}

void run_export(const ExportCommand& cmd) {
  apply_threads(cmd.threads);
  onnx::ExportOptions options;
  options.target = cmd.target;
  options.output = cmd.out;
  options.opset = cmd.opset;
  options.dtype = cmd.dtype;
  options.batch_size = parse_batch_axis(cmd.batch_axis);
  options.verify = !cmd.no_verify;
  options.seq_len = cmd.seq_len;
  if (options.batch_size > 0 && options.verify) {
    fail_usage_option("batch_axis", "a fixed batch axis ({}) cannot be verified at batch 1, 7 and 256; add --no-verify",
                      options.batch_size);
  }
  const onnx::ExportReport report = onnx::export_model(options);
  if (cmd.json) {
    std::cout << report.to_json().dump(2) << "\n";
  } else {
    std::cout << report.to_text();
  }
  if (!report.passed) {
    fail(
        "onnxruntime's outputs are beyond tolerance ({:g} relative) of hone's, or the checker failed; {} was not "
        "written",
        report.tolerance, cmd.out);
  }
}

}  // namespace

void register_export(CLI::App& root) {
  auto cmd = std::make_shared<ExportCommand>();
  CLI::App* app = root.add_subcommand("export", "Export a run or zoo model to ONNX, verified by onnxruntime");
  app->footer(
      "The graph takes what a user has: pixel values in [0, 1], raw feature values, token ids with an attention\n"
      "mask, or windows of raw prices; the loader's normalization is inside it. Unless --no-verify, onnxruntime\n"
      "runs the file at batch 1, 7 and 256 and on the whole real test split, beside hone (max abs/rel error per\n"
      "output, the task metric) and lists the op types of its optimized graph at each level. Beyond tolerance\n"
      "(fp32 1e-5, fp16 2e-2 relative): exit 1 and no file.\n"
      "Examples:\n"
      "  hone export runs/cnn -o cnn.onnx\n"
      "  hone export runs/cnn -o cnn-fp16.onnx --dtype fp16 --json\n"
      "  hone export minilm -o minilm.onnx --opset 23        # attention as the Attention op (opset >= 23)\n"
      "  hone export runs/lstm -o lstm.onnx                 # raw price windows in, next-day price out\n"
      "  hone export minilm -o minilm.onnx --seq-len 32     # random weights: agreement only\n"
      "  hone export minilm-pretrained -o minilm.onnx       # the real all-MiniLM-L6-v2, checked on real reviews\n"
      "  hone export runs/cnn-lowrank -o cnn-lowrank.onnx   # a compressed run (hone compress)\n");
  add_flag(*app, flags::kTarget, cmd->target)->required();
  add_flag(*app, flags::kOut, cmd->out)->required();
  add_flag(*app, flags::kOpset, cmd->opset)->check(CLI::Range(onnx::kMinOpset, onnx::kMaxOpset));
  add_flag(*app, flags::kDtype, cmd->dtype)->check(CLI::IsMember({"fp32", "fp16"}));
  add_flag(*app, flags::kBatchAxis, cmd->batch_axis);
  add_flag(*app, flags::kNoVerify, cmd->no_verify);
  add_flag(*app, flags::kSeqLen, cmd->seq_len)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_export(*cmd); });
}

}  // namespace hone::cli
