#pragma once
// One file per subcommand (cmd_<verb>.cpp); each registers itself on the root app. The CLI holds no
// logic: it fills an options struct and calls the library.
#include <CLI/CLI.hpp>

namespace hone::cli {

void register_info(CLI::App& root);
void register_train(CLI::App& root);
void register_eval(CLI::App& root);
void register_bench(CLI::App& root);
void register_embed(CLI::App& root);
void register_profile(CLI::App& root);
void register_compress(CLI::App& root);
void register_serve(CLI::App& root);
void register_loadgen(CLI::App& root);
void register_export(CLI::App& root);
void register_optimize(CLI::App& root);

}  // namespace hone::cli
