#include "app.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <string>

#include "commands.h"
#include "flags.h"
#include "hone/compress/encoder_datasets.h"
#include "hone/core/error.h"

namespace hone::cli {
namespace {

std::string command_list(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

/// A library error names the option it is about; the CLI adds the flag that sets it.
void print_error(const Error& e) {
  const std::string flag = e.option().empty() ? std::string() : flag_for_option(e.option());
  if (flag.empty()) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
  } else {
    std::fprintf(stderr, "hone: error: %s (flag %s)\n", e.what(), flag.c_str());
  }
}

}  // namespace

std::unique_ptr<CLI::App> make_app() {
  auto app = std::make_unique<CLI::App>(
      "hone: profile, compress, train, benchmark, export and serve neural networks (on LibTorch)", "hone");
  app->set_version_flag("--version", std::string("hone ") + HONE_VERSION);
  app->require_subcommand(1);
  app->footer(
      "Examples:\n"
      "  hone info --json\n"
      "  hone train --model cnn --data fashion-mnist --epochs 4 -o runs/cnn\n"
      "  hone eval runs/cnn\n"
      "  hone bench cnn --batch 1,64\n"
      "  hone profile cnn --batch 64 --trace cnn-trace.json\n"
      "  hone embed \"A man is eating food.\" \"A man eats pasta.\" --similarity\n"
      "  hone serve runs/cnn --port 8080\n"
      "Run `hone <command> --help` for a command's flags.\n");
  register_info(*app);
  register_train(*app);
  register_eval(*app);
  register_bench(*app);
  register_embed(*app);
  register_profile(*app);
  register_compress(*app);
  register_serve(*app);
  register_loadgen(*app);
  register_export(*app);
  register_optimize(*app);
  return app;
}

int run(int argc, char** argv) {
  // Datasets whose loaders live above the data module (fine-foods and its compressed-encoder
  // variants) join the registry before any command lists or loads one.
  compress::register_encoder_datasets();
  const auto app = make_app();
  // An unknown command is named, with the list (CLI11 alone would say "a subcommand is required").
  if (argc < 2) {
    std::fprintf(stderr, "hone: error: a command is required; commands: %s\nusage: hone --help\n",
                 command_list(*app).c_str());
    return 2;
  }
  const std::string first = argv[1];
  const auto named = app->get_subcommands([&first](const CLI::App* sub) { return sub->get_name() == first; });
  if (!first.empty() && first[0] != '-' && named.empty()) {
    std::fprintf(stderr, "hone: error: unknown command '%s'; commands: %s\nusage: hone --help\n", first.c_str(),
                 command_list(*app).c_str());
    return 2;
  }
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
    const CLI::App* command = app.get();
    for (const CLI::App* sub : app->get_subcommands()) command = sub;
    std::fprintf(stderr, "usage: %s --help\n",
                 command == app.get() ? "hone" : (std::string("hone ") + command->get_name()).c_str());
    return 2;
  } catch (const UsageError& e) {
    print_error(e);
    return 2;
  } catch (const Error& e) {
    print_error(e);
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace hone::cli
