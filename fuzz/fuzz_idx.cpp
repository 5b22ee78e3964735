// IDX reader (MNIST / Fashion-MNIST), plain and gzip: load_idx(images, labels).
// Input layout: byte 0 flags (bit 0: gzip the labels file, bit 1: gzip the
// images file, done here so that the fuzzer mutates the IDX structure inside
// a valid gzip stream; a raw input starting 1f 8b reaches the gzip parser's
// own error paths), bytes 1-2 the labels file's length (little-endian,
// clamped), then the labels file, then the images file.
#include <janus/data.hpp>
#include <zlib.h>

#include <algorithm>
#include <vector>

#include "fuzz_common.hpp"

namespace {

std::vector<uint8_t> gzip(const uint8_t* p, size_t n) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<uint8_t> out(deflateBound(&z, static_cast<uLong>(n)) + 32);
  z.next_in = const_cast<Bytef*>(p);
  z.avail_in = static_cast<uInt>(n);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string write(const char* name, const uint8_t* p, size_t n, bool compress) {
  if (!compress) return janus_fuzz::write_file(name, p, n);
  std::vector<uint8_t> gz = gzip(p, n);
  return janus_fuzz::write_file(name, gz.data(), gz.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  size_t labels_len = std::min<size_t>(data[1] | (size_t(data[2]) << 8), size - 3);
  const uint8_t* labels = data + 3;
  const uint8_t* images = labels + labels_len;
  const size_t images_len = size - 3 - labels_len;
  const std::string lpath = write("labels-idx1-ubyte", labels, labels_len, flags & 1);
  const std::string ipath = write("images-idx3-ubyte", images, images_len, flags & 2);
  try {
    janus::Dataset d = janus::load_idx(ipath, lpath, 10);
    d.validate();
  } catch (const janus::Error&) {
  }
  return 0;
}
