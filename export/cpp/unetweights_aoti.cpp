// unetweights_aoti: run an evaluation graph compiled ahead of time by AOTInductor, from C++.
//
//   unetweights_aoti GRAPH.pt2 INPUTS.pt OUT.txt [--repeat N]
//
// GRAPH.pt2 is a package written by unetweights.export.to_pt2 (torch.export, then AOTInductor) of
// an EvaluationGraph: no TorchScript and no Python source; it is loaded with
// torch::inductor::AOTIModelPackageLoader, which runs the compiled kernels. INPUTS.pt is read as
// by unetweights_eval (torch.save({"logits": ..., "target": ..., "weight": ...}); "weight" only
// where the graph was exported with one). The package's metadata names its inputs and its outputs
// ("unetweights.inputs", "unetweights.outputs"), so the program needs no other description.
//
// The program evaluates the graph (no autograd: a package has none) and writes every output to
// OUT.txt in unetweights_eval's format, named "graph.<output>" in the graph's order. With
// --repeat N it runs the graph N more times and prints the median time of a run.
//
// Exit status: 0 on success, 2 for bad arguments, 1 for any other failure (a file that cannot be
// read or written, a package that fails to load or run, inputs that do not fit the package), with
// a message on stderr.

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "results_io.h"

namespace {

using namespace unetweights;

const char* const kUsage =
    "usage: unetweights_aoti GRAPH.pt2 INPUTS.pt OUT.txt [--repeat N]\n"
    "\n"
    "  GRAPH.pt2  an evaluation graph compiled by unetweights.export.to_pt2 (AOTInductor)\n"
    "  INPUTS.pt  torch.save({'logits': ..., 'target': ..., 'weight': ...}) from Python;\n"
    "             'weight' only where the graph takes one\n"
    "  OUT.txt    where to write the graph outputs\n"
    "  --repeat N also time N more runs and print the median\n";

std::string metadata_entry(const std::unordered_map<std::string, std::string>& metadata, const std::string& key,
                           const std::string& path) {
  const auto entry = metadata.find(key);
  if (entry == metadata.end() || entry->second.empty()) {
    throw Failure("graph '" + path + "' has no '" + key +
                  "' metadata: write it with unetweights.export.to_pt2, which records its inputs and outputs");
  }
  return entry->second;
}

std::unique_ptr<torch::inductor::AOTIModelPackageLoader> load_package(const std::string& path) {
  read_bytes(path, "graph");  // a clear message for a missing or unreadable file
  try {
    return std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
  } catch (const c10::Error& error) {
    throw Failure("cannot load graph '" + path + "' as an AOTInductor package: " + error.what_without_backtrace());
  }
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) {
    text += (text.empty() ? "" : ", ") + name;
  }
  return text;
}

int run(const std::string& graph_path, const std::string& inputs_path, const std::string& out_path, int repeat) {
  auto loader = load_package(graph_path);
  const auto metadata = loader->get_metadata();
  const std::vector<std::string> input_names = split_names(metadata_entry(metadata, "unetweights.inputs", graph_path));
  const std::vector<std::string> output_names = split_names(metadata_entry(metadata, "unetweights.outputs", graph_path));
  const Inputs inputs = load_inputs(inputs_path);

  std::vector<at::Tensor> args{inputs.logits, inputs.target};
  std::vector<std::string> given{"logits", "target"};
  if (inputs.weight) {
    args.push_back(*inputs.weight);
    given.emplace_back("weight");
  }
  if (given != input_names) {
    throw Failure("graph '" + graph_path + "' takes the inputs (" + joined(input_names) + "), but inputs '" +
                  inputs_path + "' holds (" + joined(given) + ")");
  }

  std::cout << "inputs  " << inputs_path << '\n';
  for (size_t i = 0; i < args.size(); ++i) {
    std::cout << "  " << std::left << std::setw(8) << given[i] << describe(args[i]) << '\n';
  }

  at::NoGradGuard no_grad;
  const std::vector<at::Tensor> outputs = loader->run(args);
  if (outputs.size() != output_names.size()) {
    throw Failure("graph '" + graph_path + "' returned " + std::to_string(outputs.size()) + " tensors, its metadata names " +
                  std::to_string(output_names.size()) + " (" + joined(output_names) + ")");
  }
  NamedTensors results;
  for (size_t i = 0; i < outputs.size(); ++i) {
    results.emplace_back("graph." + output_names[i], outputs[i]);
  }
  std::cout << "graph   " << graph_path << " (AOTInductor): " << results.size() << " outputs\n";
  for (const auto& entry : results) {
    std::cout << "  " << std::left << std::setw(24) << entry.first << describe(entry.second) << '\n';
  }

  if (repeat > 0) {
    std::vector<double> seconds;
    for (int i = 0; i < repeat; ++i) {
      const auto start = std::chrono::steady_clock::now();
      loader->run(args);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
    std::cout << "median  " << std::setprecision(6) << seconds[seconds.size() / 2] * 1e3 << " ms per run (" << repeat
              << " runs)\n";
  }

  write_results(out_path, results);
  std::cout << "wrote " << results.size() << " tensors to " << out_path << '\n';
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (asked_for_help(argc, argv, kUsage)) {
    return 0;
  }
  int repeat = 0;
  if (argc == 6 && std::string(argv[4]) == "--repeat") {
    try {
      size_t used = 0;
      repeat = std::stoi(argv[5], &used);
      if (used != std::string(argv[5]).size() || repeat < 1) {
        throw std::invalid_argument("not a positive count");
      }
    } catch (const std::exception&) {
      std::cerr << "unetweights_aoti: --repeat: expected a positive whole number, got '" << argv[5] << "'\n\n" << kUsage;
      return 2;
    }
  } else if (argc != 4) {
    std::cerr << "unetweights_aoti: expected 3 arguments (and optionally --repeat N), got " << (argc - 1) << "\n\n"
              << kUsage;
    return 2;
  }
  return run_reporting_failures("unetweights_aoti", [&] { return run(argv[1], argv[2], argv[3], repeat); });
}
