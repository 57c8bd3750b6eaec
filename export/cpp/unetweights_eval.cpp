// unetweights_eval: run a scripted unetweights training loss and evaluation graph from C++.
//
//   unetweights_eval LOSS.pt GRAPH.pt INPUTS.pt OUT.txt
//
// LOSS.pt and GRAPH.pt are TorchScript files saved by unetweights.export.to_torchscript: a loss
// with forward(input, target, weight=None) -> Tensor (a scalar) and an EvaluationGraph with
// forward(logits, target, weight=None) -> Dict[str, Tensor]. INPUTS.pt is written in Python by
//   torch.save({"logits": logits, "target": target, "weight": weight}, "INPUTS.pt")
// (float logits (N, C, *spatial), integer target (N, *spatial), optional float weight map) and is
// read here with torch::jit::pickle_load.
//
// The program evaluates the graph without autograd, computes the training loss on logits that
// require grad, runs backward, and writes every result to OUT.txt: one block per tensor, a
// header line "NAME DTYPE NDIM D0 D1 ..." and then the values in row-major order, one line per
// row of the last dim, with enough digits to round-trip (9 for float32, 17 for float64). Names
// are "graph.<output>" for each graph output in the graph's order, then "loss" and "grad" (the
// gradient of the loss with respect to the logits). See README.md in this folder.
//
// Exit status: 0 on success, 2 for bad arguments, 1 for any other failure (a file that cannot be
// read or written, a module that fails to load or run), with a message on stderr.

#include <torch/script.h>

#include <exception>
#include <iomanip>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "results_io.h"

namespace {

using namespace unetweights;

const char* const kUsage =
    "usage: unetweights_eval LOSS.pt GRAPH.pt INPUTS.pt OUT.txt\n"
    "\n"
    "  LOSS.pt    scripted training loss (unetweights.export.to_torchscript)\n"
    "  GRAPH.pt   scripted evaluation graph (unetweights.evaluation.EvaluationGraph)\n"
    "  INPUTS.pt  torch.save({'logits': ..., 'target': ..., 'weight': ...}) from Python;\n"
    "             'weight' may be left out\n"
    "  OUT.txt    where to write the graph outputs, the loss and its gradient\n";

torch::jit::Module load_module(const std::string& path, const std::string& what) {
  read_bytes(path, what);  // a clear message for a missing or unreadable file
  try {
    return torch::jit::load(path);
  } catch (const c10::Error& error) {
    throw Failure("cannot load " + what + " '" + path + "' as TorchScript: " + error.what_without_backtrace());
  }
}

std::vector<c10::IValue> arguments(const at::Tensor& logits, const Inputs& inputs) {
  std::vector<c10::IValue> args{logits, inputs.target};
  if (inputs.weight) {
    args.emplace_back(*inputs.weight);
  } else {
    args.emplace_back(c10::IValue());  // None: every pixel weighs 1
  }
  return args;
}

// Graph outputs in the graph's order, named "graph.<output>", computed without autograd.
NamedTensors evaluate_graph(torch::jit::Module& graph, const Inputs& inputs) {
  graph.eval();
  at::NoGradGuard no_grad;
  const c10::IValue output = graph.forward(arguments(inputs.logits, inputs));
  if (!output.isGenericDict()) {
    throw Failure(std::string("the evaluation graph returned a ") + output.tagKind() + ", expected Dict[str, Tensor]");
  }
  NamedTensors results;
  for (const auto& entry : output.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) {
      throw Failure("the evaluation graph returned an entry that is not str -> Tensor");
    }
    results.emplace_back("graph." + entry.key().toStringRef(), entry.value().toTensor());
  }
  return results;
}

// The training loss (a scalar) and its gradient with respect to the logits.
std::pair<at::Tensor, at::Tensor> loss_and_gradient(torch::jit::Module& loss_module, const Inputs& inputs) {
  at::Tensor logits = inputs.logits.detach().clone().requires_grad_(true);
  const c10::IValue output = loss_module.forward(arguments(logits, inputs));
  if (!output.isTensor()) {
    throw Failure(std::string("the training loss returned a ") + output.tagKind() + ", expected a Tensor");
  }
  at::Tensor loss = output.toTensor();
  if (loss.dim() != 0) {
    throw Failure("the training loss returned shape " + shape_string(loss) +
                  ", expected a scalar (reduction 'mean' or 'sum')");
  }
  if (!loss.requires_grad()) {
    throw Failure("the training loss does not depend on the logits through autograd, so it has no gradient");
  }
  loss.backward();
  at::Tensor grad = logits.grad();
  if (!grad.defined()) {
    throw Failure("backward through the training loss left no gradient on the logits");
  }
  return {loss.detach(), grad};
}

int run(const std::string& loss_path, const std::string& graph_path, const std::string& inputs_path,
        const std::string& out_path) {
  torch::jit::Module loss_module = load_module(loss_path, "loss");
  torch::jit::Module graph = load_module(graph_path, "graph");
  const Inputs inputs = load_inputs(inputs_path);

  std::cout << "inputs  " << inputs_path << '\n';
  std::cout << "  logits  " << describe(inputs.logits) << '\n';
  std::cout << "  target  " << describe(inputs.target) << '\n';
  std::cout << "  weight  " << (inputs.weight ? describe(*inputs.weight) : std::string("none")) << '\n';

  NamedTensors results = evaluate_graph(graph, inputs);
  std::cout << "graph   " << graph_path << ": " << results.size() << " outputs\n";
  for (const auto& entry : results) {
    std::cout << "  " << std::left << std::setw(24) << entry.first << describe(entry.second) << '\n';
  }

  const auto loss = loss_and_gradient(loss_module, inputs);
  std::cout << "loss    " << loss_path << ": " << std::setprecision(9)
            << loss.first.to(at::kDouble).item<double>() << " (" << describe(loss.first) << ")\n";
  std::cout << "grad    " << describe(loss.second) << ", max |grad| " << std::setprecision(6)
            << loss.second.abs().max().to(at::kDouble).item<double>() << '\n';

  results.emplace_back("loss", loss.first);
  results.emplace_back("grad", loss.second);
  write_results(out_path, results);
  std::cout << "wrote " << results.size() << " tensors to " << out_path << '\n';
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (asked_for_help(argc, argv, kUsage)) {
    return 0;
  }
  if (argc != 5) {
    std::cerr << "unetweights_eval: expected 4 arguments, got " << (argc - 1) << "\n\n" << kUsage;
    return 2;
  }
  return run_reporting_failures("unetweights_eval", [&] { return run(argv[1], argv[2], argv[3], argv[4]); });
}
