// hone: make neural networks faster, smaller and cheaper to train and serve.
// Exit codes: 0 success, 1 runtime error (one line naming the problem), 2 bad usage.
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "hone/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"hone: profile, compress, train, benchmark, export and serve neural networks (on LibTorch)", "hone"};
  app.set_version_flag("--version", std::string("hone ") + HONE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  hone info --json\n"
      "  hone train --model cnn --data fashion-mnist --epochs 4 -o runs/cnn\n"
      "  hone eval runs/cnn\n"
      "  hone bench cnn --batch 1,64\n"
      "  hone profile cnn --batch 64 --trace cnn-trace.json\n"
      "  hone embed \"A man is eating food.\" \"A man eats pasta.\" --similarity\n"
      "Run `hone <command> --help` for a command's flags.\n");
  // The subcommands, in the order --help lists them.
  hone::cli::register_info(app);
  hone::cli::register_train(app);
  hone::cli::register_eval(app);
  hone::cli::register_bench(app);
  hone::cli::register_embed(app);
  hone::cli::register_profile(app);
  hone::cli::register_compress(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
    const CLI::App* command = &app;
    for (const CLI::App* sub : app.get_subcommands()) command = sub;
    std::fprintf(stderr, "usage: %s --help\n",
                 command == &app ? "hone" : (std::string("hone ") + command->get_name()).c_str());
    return 2;
  } catch (const hone::UsageError& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
    return 2;
  } catch (const hone::Error& e) {
    std::fprintf(stderr, "hone: error: %s\n", e.what());
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
