// janus: train, evaluate and run Janus models from the command line.
//   janus train --config configs/cifar10.json
//   janus evaluate --run experiments/cifar10
//   janus predict --run experiments/cifar10 --data test_batch.bin --out predictions.csv
//   janus info
//   janus bench [--config FILE] [--device cpu|cuda|all] [--json FILE]
// Every error ends as "janus: error: <message>" on stderr and exit status 1
// (command-line usage errors: CLI11's message and exit status).
#include <exception>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "janus/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Janus: a C++/CUDA deep-learning framework. Train, evaluate and run models.", "janus"};
  app.set_version_flag("--version", std::string("janus ") + JANUS_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'janus SUBCOMMAND --help' for the options of a subcommand.");
  janus_cli::Action action;
  janus_cli::add_train(app, action);
  janus_cli::add_evaluate(app, action);
  janus_cli::add_predict(app, action);
  janus_cli::add_info(app, action);
  janus_cli::add_bench(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : 0;
  } catch (const janus::Error& e) {
    std::cout.flush();
    std::cerr << "janus: error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "janus: error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "janus: error: unknown failure\n";
  }
  return 1;
}
