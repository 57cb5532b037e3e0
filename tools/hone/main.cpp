// hone: make neural networks faster, smaller and cheaper to train and serve.
// Exit codes: 0 success, 1 runtime error (one line naming the problem), 2 bad usage.
#include "app.h"

int main(int argc, char** argv) { return hone::cli::run(argc, argv); }
