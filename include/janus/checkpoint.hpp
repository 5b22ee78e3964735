// Checkpoints in the safetensors format: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes. Readable by the
// Python `safetensors` package. Files are written atomically: a temporary
// file in the same directory, fsync, then rename over the target.
//
// Janus adds to the metadata: "format" = "janus-checkpoint", "format_version",
// and "crc32" of the data section, so a truncated or altered file is refused.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "janus/device.hpp"
#include "janus/tensor.hpp"

namespace janus {

class NeuralNetwork;
class Optimizer;

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // on the CPU, float32/float64/bfloat16 as stored (F32, F64, BF16)
  std::map<std::string, std::string> metadata;
};
// Throws janus::Error naming the file and the problem (truncated, bad header,
// checksum mismatch, offsets out of range, unsupported dtype).
SafetensorsFile read_safetensors(const std::string& path);

// Model (+ optimizer state) checkpoint. metadata gets the model config under
// "model", the input shape under "input_shape", the optimizer config and step
// under "optimizer" and "optimizer_steps"; `extra` is merged in.
void save_checkpoint(const std::string& path, NeuralNetwork& model, Optimizer* optimizer,
                     const std::map<std::string, std::string>& extra = {});
// Rebuilds the model from a checkpoint on `device` with its parameters and
// buffers; restores optimizer state when `optimizer` is given.
NeuralNetwork load_model(const std::string& path, Device& device);
void load_checkpoint_into(const std::string& path, NeuralNetwork& model, Optimizer* optimizer);

// Writes `contents` to `path` atomically (temporary file + fsync + rename).
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace janus
