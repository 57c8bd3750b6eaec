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

#include <cmath>
#include <cstdint>
#include <exception>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

const char* const kUsage =
    "usage: unetweights_eval LOSS.pt GRAPH.pt INPUTS.pt OUT.txt\n"
    "\n"
    "  LOSS.pt    scripted training loss (unetweights.export.to_torchscript)\n"
    "  GRAPH.pt   scripted evaluation graph (unetweights.evaluation.EvaluationGraph)\n"
    "  INPUTS.pt  torch.save({'logits': ..., 'target': ..., 'weight': ...}) from Python;\n"
    "             'weight' may be left out\n"
    "  OUT.txt    where to write the graph outputs, the loss and its gradient\n";

// A failure with a message meant for the user (no backtrace).
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

std::string dtype_name(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Double: return "float64";
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Int: return "int32";
    case c10::ScalarType::Short: return "int16";
    case c10::ScalarType::Char: return "int8";
    case c10::ScalarType::Byte: return "uint8";
    case c10::ScalarType::Bool: return "bool";
    default: throw Failure(std::string("unsupported dtype ") + c10::toString(type));
  }
}

std::string shape_string(const at::Tensor& tensor) {
  std::ostringstream text;
  text << '[';
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    text << (d ? ", " : "") << tensor.size(d);
  }
  text << ']';
  return text.str();
}

std::string describe(const at::Tensor& tensor) {
  return dtype_name(tensor.scalar_type()) + " " + shape_string(tensor);
}

// The whole file as bytes; Failure if it cannot be opened or read.
std::vector<char> read_bytes(const std::string& path, const std::string& what) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Failure("cannot open " + what + " '" + path + "'");
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) {
    throw Failure("cannot read " + what + " '" + path + "'");
  }
  return bytes;
}

torch::jit::Module load_module(const std::string& path, const std::string& what) {
  read_bytes(path, what);  // a clear message for a missing or unreadable file
  try {
    return torch::jit::load(path);
  } catch (const c10::Error& error) {
    throw Failure("cannot load " + what + " '" + path + "' as TorchScript: " + error.what_without_backtrace());
  }
}

struct Inputs {
  at::Tensor logits;
  at::Tensor target;
  std::optional<at::Tensor> weight;
};

at::Tensor dict_tensor(const c10::impl::GenericDict& dict, const std::string& key, const std::string& path) {
  auto entry = dict.find(key);
  if (entry == dict.end()) {
    throw Failure("inputs '" + path + "': no '" + key + "' entry");
  }
  if (!entry->value().isTensor()) {
    throw Failure("inputs '" + path + "': '" + key + "' is a " + entry->value().tagKind() + ", expected a tensor");
  }
  return entry->value().toTensor();
}

Inputs load_inputs(const std::string& path) {
  const std::vector<char> bytes = read_bytes(path, "inputs");
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& error) {
    throw Failure("cannot read inputs '" + path + "' (expected a file written by torch.save): " +
                  error.what_without_backtrace());
  }
  if (!value.isGenericDict()) {
    throw Failure("inputs '" + path + "': expected a dict of tensors saved by torch.save, got a " + value.tagKind());
  }
  const auto dict = value.toGenericDict();
  for (const auto& entry : dict) {
    if (!entry.key().isString() ||
        (entry.key().toStringRef() != "logits" && entry.key().toStringRef() != "target" &&
         entry.key().toStringRef() != "weight")) {
      throw Failure("inputs '" + path + "': unexpected entry " + c10::str(entry.key()) +
                    "; expected 'logits', 'target' and optionally 'weight'");
    }
  }
  Inputs inputs;
  inputs.logits = dict_tensor(dict, "logits", path);
  inputs.target = dict_tensor(dict, "target", path);
  if (dict.contains("weight")) {
    inputs.weight = dict_tensor(dict, "weight", path);
  }
  if (!inputs.logits.is_floating_point() || inputs.logits.dim() < 3) {
    throw Failure("inputs '" + path + "': 'logits' must be floating point with shape (N, C, *spatial), got " +
                  describe(inputs.logits));
  }
  return inputs;
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

void write_tensor(std::ostream& out, const std::string& name, const at::Tensor& value) {
  const at::Tensor tensor = value.detach().to(at::kCPU).contiguous();
  out << name << ' ' << dtype_name(tensor.scalar_type()) << ' ' << tensor.dim();
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    out << ' ' << tensor.size(d);
  }
  out << '\n';
  const int64_t count = tensor.numel();
  if (count == 0) {
    return;
  }
  const int64_t row = tensor.dim() == 0 ? 1 : tensor.size(-1);
  if (tensor.is_floating_point()) {
    const int digits = tensor.scalar_type() == at::kDouble ? 17 : 9;  // round-trips the dtype
    const at::Tensor data = tensor.to(at::kDouble).contiguous();
    const double* values = data.data_ptr<double>();
    out << std::setprecision(digits);
    for (int64_t i = 0; i < count; ++i) {
      const double v = values[i];
      if (std::isnan(v)) {
        out << "nan";
      } else if (std::isinf(v)) {
        out << (v > 0 ? "inf" : "-inf");
      } else {
        out << v;
      }
      out << ((i + 1) % row == 0 ? '\n' : ' ');
    }
  } else {
    const at::Tensor data = tensor.to(at::kLong).contiguous();
    const int64_t* values = data.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      out << values[i] << ((i + 1) % row == 0 ? '\n' : ' ');
    }
  }
}

void write_results(const std::string& path, const NamedTensors& results) {
  std::ofstream out(path);
  if (!out) {
    throw Failure("cannot open output '" + path + "' for writing");
  }
  out << "# unetweights_eval results v1\n";
  out << "# one block per tensor: NAME DTYPE NDIM D0 D1 ..., then the values in row-major order\n";
  for (const auto& entry : results) {
    write_tensor(out, entry.first, entry.second);
  }
  out.close();
  if (!out) {
    throw Failure("cannot write output '" + path + "'");
  }
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
  if (argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (argc != 5) {
    std::cerr << "unetweights_eval: expected 4 arguments, got " << (argc - 1) << "\n\n" << kUsage;
    return 2;
  }
  try {
    return run(argv[1], argv[2], argv[3], argv[4]);
  } catch (const Failure& error) {
    std::cerr << "unetweights_eval: error: " << error.what() << '\n';
  } catch (const c10::Error& error) {
    std::cerr << "unetweights_eval: error: " << error.what_without_backtrace() << '\n';
  } catch (const std::exception& error) {
    std::cerr << "unetweights_eval: error: " << error.what() << '\n';
  }
  return 1;
}
