// results_io.h: what the two programs of export/cpp share: the inputs file they read (torch.save of
// {"logits", "target", "weight"}), the results file they write (one block per tensor: a header line
// "NAME DTYPE NDIM D0 D1 ..." and the values in row-major order, with enough digits to round-trip)
// and the errors they report. Header-only; see README.md in this folder.
#pragma once

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

namespace unetweights {

// A failure with a message meant for the user (no backtrace).
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

inline std::string dtype_name(c10::ScalarType type) {
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

inline std::string shape_string(const at::Tensor& tensor) {
  std::ostringstream text;
  text << '[';
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    text << (d ? ", " : "") << tensor.size(d);
  }
  text << ']';
  return text.str();
}

inline std::string describe(const at::Tensor& tensor) {
  return dtype_name(tensor.scalar_type()) + " " + shape_string(tensor);
}

// The whole file as bytes; Failure if it cannot be opened or read.
inline std::vector<char> read_bytes(const std::string& path, const std::string& what) {
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

struct Inputs {
  at::Tensor logits;
  at::Tensor target;
  std::optional<at::Tensor> weight;
};

inline at::Tensor dict_tensor(const c10::impl::GenericDict& dict, const std::string& key, const std::string& path) {
  auto entry = dict.find(key);
  if (entry == dict.end()) {
    throw Failure("inputs '" + path + "': no '" + key + "' entry");
  }
  if (!entry->value().isTensor()) {
    throw Failure("inputs '" + path + "': '" + key + "' is a " + entry->value().tagKind() + ", expected a tensor");
  }
  return entry->value().toTensor();
}

inline Inputs load_inputs(const std::string& path) {
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

inline void write_tensor(std::ostream& out, const std::string& name, const at::Tensor& value) {
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

inline void write_results(const std::string& path, const NamedTensors& results) {
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

// "a,b,c" -> {"a", "b", "c"}; an empty text gives no names.
inline std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream stream(text);
  std::string name;
  while (std::getline(stream, name, ',')) {
    names.push_back(name);
  }
  return names;
}

// Prints the usage and returns true for a lone -h or --help.
inline bool asked_for_help(int argc, char* argv[], const char* usage) {
  if (argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::cout << usage;
    return true;
  }
  return false;
}

// Runs body(), the program's work, and returns its exit status; any failure becomes one line,
// "PROGRAM: error: ...", on stderr and exit status 1.
template <typename Body>
int run_reporting_failures(const char* program, Body&& body) {
  try {
    return body();
  } catch (const Failure& error) {
    std::cerr << program << ": error: " << error.what() << '\n';
  } catch (const c10::Error& error) {
    std::cerr << program << ": error: " << error.what_without_backtrace() << '\n';
  } catch (const std::exception& error) {
    std::cerr << program << ": error: " << error.what() << '\n';
  }
  return 1;
}

}  // namespace unetweights
