// The safetensors container: [u64 header length][JSON header][raw data].
// https://huggingface.co/docs/safetensors — data offsets are relative to the
// start of the data section, tensors are packed without gaps, little-endian.
//
// The reader accepts what the reference implementation (the `safetensors`
// crate behind the Python package) accepts and refuses the rest, naming the
// file: a header length over 100,000,000 bytes or beyond the file; a header
// that is not a JSON object (UTF-8) or repeats a key; __metadata__ that is
// not an object of strings; a tensor entry without dtype, shape (unsigned
// integers) and data_offsets (two unsigned integers, begin <= end); a byte
// count that differs from shape x dtype size; offsets that leave a gap,
// overlap or do not cover the data section exactly. Of the format's dtypes,
// F32 and F64 are read; the others are refused by name.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "core/test_hooks.hpp"
#include "janus/checkpoint.hpp"
#include "janus/error.hpp"

namespace janus {

namespace {

constexpr const char* kFormat = "janus-checkpoint";
constexpr const char* kFormatVersion = "1";
// The reference reader's limit (MAX_HEADER_SIZE in the safetensors crate).
constexpr uint64_t kMaxHeaderBytes = 100000000;

// The safetensors names of Janus's dtypes, both ways.
const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
  }
  return "";  // unreachable
}
bool janus_dtype(const std::string& d, DType& out) {
  for (DType t : {DType::F32, DType::F64, DType::BF16})
    if (d == safetensors_dtype(t)) {
      out = t;
      return true;
    }
  return false;
}

// The dtypes of the format (safetensors Dtype), for telling "not supported
// here" from "not a safetensors dtype" in messages.
bool known_dtype(const std::string& d) {
  for (const char* k : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "I16",
                        "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64"})
    if (d == k) return true;
  return false;
}

// Parses the JSON header, refusing a key that repeats within one object
// (nlohmann::json would keep the last silently; which one the writer meant
// is unknowable).
nlohmann::json parse_header(const std::string& file, size_t n, const std::string& path) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto check = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
      throw Error(detail::concat("checkpoint '", path, "': header repeats the key ", parsed.dump()));
    return true;
  };
  try {
    return nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(n), check);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat("checkpoint '", path, "': header is not valid JSON (", e.what(), ")"));
  }
}

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float sizes assumed");

bool little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

uint32_t crc_of(const std::string& data, size_t begin) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data.data() + begin);
  size_t left = data.size() - begin;
  while (left > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  JANUS_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  // Test-only fault injection (core/test_hooks.hpp): stop or pause half-way
  // through a checkpoint's temporary file.
  bool hooked = test_hooks::checkpoint_hooks_enabled() && path.size() > 12 &&
                path.compare(path.size() - 12, 12, ".safetensors") == 0;
  size_t written = 0;
  while (written < contents.size()) {
    size_t chunk = contents.size() - written;
    if (hooked && written == 0 && chunk > 1) chunk /= 2;
    const ssize_t n = ::write(fd, contents.data() + written, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(detail::concat("cannot write '", tmp, "': ", std::strerror(err)));
    }
    written += static_cast<size_t>(n);
    if (hooked && written < contents.size()) {
      hooked = false;
      test_hooks::kill_point("checkpoint");
      if (const long ms = test_hooks::slow_checkpoint_write_ms(); ms > 0) ::usleep(static_cast<useconds_t>(ms) * 1000);
      test_hooks::hold_checkpoint_write(tmp);
    }
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at
  // an empty file on some file systems.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(detail::concat("cannot flush '", tmp, "': ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(detail::concat("cannot rename '", tmp, "' to '", path, "': ", std::strerror(err)));
  }
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  JANUS_CHECK(little_endian(), "safetensors writer assumes a little-endian host");
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& nt : tensors) {
    JANUS_CHECK(nt.name != "__metadata__" && !header.contains(nt.name), "checkpoint '", path,
                "': duplicate or reserved tensor name '", nt.name, "'");
    const Tensor host = nt.tensor.to(cpu_device());
    const size_t begin = data.size();
    data.append(static_cast<const char*>(host.raw()), host.bytes());
    header[nt.name] = {{"dtype", safetensors_dtype(host.dtype())},
                       {"shape", host.shape().dims()},
                       {"data_offsets", {begin, data.size()}}};
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : metadata) meta[k] = v;
  meta["format"] = kFormat;
  meta["format_version"] = kFormatVersion;
  meta["crc32"] = std::to_string(crc_of(data, 0));
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');  // keeps the data section 8-byte aligned
  std::string file(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(file.data(), &n, 8);
  file += h;
  file += data;
  write_file_atomically(path, file);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  JANUS_CHECK(in, "cannot open checkpoint '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  JANUS_CHECK(file.size() >= 8, "checkpoint '", path, "' is truncated: ", file.size(), " bytes, not even a header length");
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  JANUS_CHECK(n <= kMaxHeaderBytes && n <= file.size() - 8, "checkpoint '", path, "' is corrupt or truncated: header claims ",
              n, " bytes but the file has ", file.size(), " bytes");
  const nlohmann::json header = parse_header(file, n, path);
  JANUS_CHECK(header.is_object(), "checkpoint '", path, "': header is not a JSON object");
  const size_t data_begin = 8 + n;
  const size_t data_size = file.size() - data_begin;
  SafetensorsFile out;
  if (header.contains("__metadata__")) {
    const auto& meta = header.at("__metadata__");
    JANUS_CHECK(meta.is_object(), "checkpoint '", path, "': __metadata__ is not an object");
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      JANUS_CHECK(it.value().is_string(), "checkpoint '", path, "': metadata '", it.key(), "' is not a string");
      out.metadata[it.key()] = it.value().get<std::string>();
    }
  }
  auto crc = out.metadata.find("crc32");
  if (crc != out.metadata.end()) {
    const std::string actual = std::to_string(crc_of(file, data_begin));
    JANUS_CHECK(actual == crc->second, "checkpoint '", path, "' is corrupt: data checksum ", actual,
                " does not match the recorded ", crc->second, " (truncated or altered file)");
  }
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> extents;  // [begin, end) of each tensor
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& e = it.value();
    const std::string& name = it.key();
    JANUS_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
                "checkpoint '", path, "': entry '", name, "' lacks dtype/shape/data_offsets");
    const std::string dt = e.at("dtype").is_string() ? e.at("dtype").get<std::string>() : "";
    JANUS_CHECK(known_dtype(dt), "checkpoint '", path, "': tensor '", name, "' has dtype ", e.at("dtype").dump(),
                ", which is not a safetensors dtype");
    DType dtype = DType::F32;
    JANUS_CHECK(janus_dtype(dt, dtype), "checkpoint '", path, "': tensor '", name, "' has dtype ", dt,
                ", which Janus does not read (F32, F64 and BF16 only; convert the checkpoint, e.g. with "
                "tensor.float() in PyTorch)");
    std::vector<int64_t> dims;
    JANUS_CHECK(e.at("shape").is_array(), "checkpoint '", path, "': tensor '", name, "' shape is not an array");
    uint64_t count = 1;
    for (const auto& d : e.at("shape")) {
      JANUS_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), "checkpoint '", path,
                  "': tensor '", name, "' has a bad extent ", d.dump());
      dims.push_back(d.get<int64_t>());
      JANUS_CHECK(dims.back() == 0 || count <= (uint64_t(1) << 40) / static_cast<uint64_t>(dims.back()),
                  "checkpoint '", path, "': tensor '", name, "' shape is absurdly large");
      count *= static_cast<uint64_t>(dims.back());
    }
    const auto& off = e.at("data_offsets");
    JANUS_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                "checkpoint '", path, "': tensor '", name, "' has bad data_offsets");
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    JANUS_CHECK(b <= en && en <= data_size, "checkpoint '", path, "': tensor '", name, "' offsets [", b, ", ", en,
                ") exceed the data section of ", data_size, " bytes (truncated file?)");
    JANUS_CHECK(en - b == count * dtype_size(dtype), "checkpoint '", path, "': tensor '", name, "' has ", en - b,
                " bytes but shape ", Shape(dims).str(), " needs ", count * dtype_size(dtype));
    extents.emplace_back(b, en, name);
    Tensor t = Tensor::empty(Shape(dims), cpu_device(), dtype);
    if (t.bytes()) std::memcpy(t.raw(), file.data() + data_begin + b, t.bytes());
    out.tensors[name] = t;
  }
  // The tensors tile the data section: no gap, no overlap, nothing after.
  std::sort(extents.begin(), extents.end());
  uint64_t end = 0;
  std::string previous;
  for (const auto& [b, en, name] : extents) {
    JANUS_CHECK(b >= end, "checkpoint '", path, "': tensors '", previous, "' and '", name,
                "' overlap in the data section (", name, " starts at byte ", b, ", before ", end, ")");
    JANUS_CHECK(b == end, "checkpoint '", path, "': a gap of ", b - end, " bytes lies before tensor '", name,
                "' in the data section (bytes ", end, " to ", b, ")");
    end = en;
    previous = name;
  }
  JANUS_CHECK(end == data_size, "checkpoint '", path, "': the data section has ", data_size,
              " bytes but its tensors cover ", end, " (", data_size - end, " bytes of trailing data)");
  return out;
}

}  // namespace janus
