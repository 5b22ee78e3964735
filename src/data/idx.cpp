// IDX files (MNIST / Fashion-MNIST), gzip or plain -> NHWC float Dataset.
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>

namespace janus {

namespace {

// Deflate cannot expand data more than about 1032:1; anything claiming more
// than this from a gzip file of a given size is refused before allocating.
constexpr uint64_t kMaxDeflateRatio = 1100;

// Sequential reader over a gzip or plain file.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
    file_bytes_ = data_detail::file_size_or_throw(path, "idx");
    {
      data_detail::File probe(path, "idx");
      unsigned char m[2] = {0, 0};
      size_t got = std::fread(m, 1, 2, probe.f);
      gzip_ = got == 2 && m[0] == 0x1f && m[1] == 0x8b;
    }
    if (gzip_) {
      gz_ = gzopen(path.c_str(), "rb");
      JANUS_CHECK(gz_ != nullptr, "idx: ", path, ": cannot open gzip stream");
      gzbuffer(gz_, 1 << 18);
    } else {
      plain_ = std::fopen(path.c_str(), "rb");
      JANUS_CHECK(plain_ != nullptr, "idx: ", path, ": cannot open");
    }
  }
  ~ByteSource() {
    if (gz_) gzclose(gz_);
    if (plain_) std::fclose(plain_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzip() const { return gzip_; }
  uint64_t file_bytes() const { return file_bytes_; }

  // Up to n bytes; fewer only at the end of the data.
  size_t read(void* dst, size_t n) {
    if (!gzip_) {
      size_t got = std::fread(dst, 1, n, plain_);
      JANUS_CHECK(got == n || !std::ferror(plain_), "idx: ", path_, ": read error");
      return got;
    }
    size_t total = 0;
    auto* out = static_cast<unsigned char*>(dst);
    while (total < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, 1u << 30));
      int got = gzread(gz_, out + total, chunk);
      if (got < 0) {
        int errnum = 0;
        const char* msg = gzerror(gz_, &errnum);
        throw Error(detail::concat("idx: ", path_, ": gzip error after ", total_ + total,
                                   " decompressed bytes: ", msg ? msg : "unknown"));
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    total_ += total;
    return total;
  }

 private:
  std::string path_;
  uint64_t file_bytes_ = 0;
  bool gzip_ = false;
  gzFile gz_ = nullptr;
  std::FILE* plain_ = nullptr;
  uint64_t total_ = 0;
};

struct IdxHeader {
  std::vector<uint64_t> dims;
  uint64_t payload = 0;  // bytes after the header
  uint64_t header_bytes = 0;
};

// Reads and checks the header: magic 00 00 08 <ndims>, then ndims big-endian
// u32 extents; checks the extents against the file size.
IdxHeader read_header(ByteSource& src, const std::string& path, int expect_dims, const char* kind) {
  unsigned char magic[4];
  size_t got = src.read(magic, 4);
  JANUS_CHECK(got == 4, "idx: ", path, ": file too short for an IDX header (", got, " bytes)");
  uint32_t m = (uint32_t(magic[0]) << 24) | (uint32_t(magic[1]) << 16) | (uint32_t(magic[2]) << 8) | magic[3];
  uint32_t expect_magic = 0x00000800u | static_cast<uint32_t>(expect_dims);
  if (m != expect_magic) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", m);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "0x%08x", expect_magic);
    throw Error(detail::concat("idx: ", path, ": bad magic ", buf, " at byte offset 0, expected ", ebuf,
                               " for an unsigned-byte ", kind, " file"));
  }
  IdxHeader h;
  h.header_bytes = 4 + 4 * static_cast<uint64_t>(expect_dims);
  h.payload = 1;
  for (int i = 0; i < expect_dims; ++i) {
    unsigned char b[4];
    JANUS_CHECK(src.read(b, 4) == 4, "idx: ", path, ": truncated header (dimension ", i, ")");
    uint64_t v = (uint64_t(b[0]) << 24) | (uint64_t(b[1]) << 16) | (uint64_t(b[2]) << 8) | b[3];
    JANUS_CHECK(v > 0, "idx: ", path, ": dimension ", i, " is zero");
    h.dims.push_back(v);
    JANUS_CHECK(h.payload <= std::numeric_limits<uint64_t>::max() / v, "idx: ", path,
                ": header dimensions overflow");
    h.payload *= v;
  }
  std::string dims_str;
  for (size_t i = 0; i < h.dims.size(); ++i) dims_str += (i ? " x " : "") + std::to_string(h.dims[i]);
  if (!src.gzip()) {
    uint64_t expect = h.header_bytes + h.payload;
    JANUS_CHECK(src.file_bytes() == expect, "idx: ", path, ": header says ", dims_str, " (", expect,
                " bytes with the header) but the file has ", src.file_bytes(), " bytes");
  } else {
    uint64_t limit = src.file_bytes() * kMaxDeflateRatio;
    JANUS_CHECK(h.payload <= limit, "idx: ", path, ": header says ", dims_str, " (", h.payload,
                " bytes) but a gzip file of ", src.file_bytes(),
                " bytes cannot hold that much; corrupt header");
  }
  data_detail::check_decoded_size(h.payload, expect_dims == 1 ? 1 : sizeof(float), "idx", path);
  return h;
}

// After the payload, a gzip stream must be exhausted.
void check_gzip_end(ByteSource& src, const std::string& path, const IdxHeader& h) {
  if (!src.gzip()) return;
  unsigned char extra;
  JANUS_CHECK(src.read(&extra, 1) == 0, "idx: ", path, ": trailing data after the ", h.payload,
              " payload bytes the header announces");
}

}  // namespace

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes) {
  JANUS_CHECK(num_classes > 0 && num_classes <= 256, "idx: num_classes must be 1..256, got ", num_classes);
  // Labels first: small, and their count must match the images.
  ByteSource lsrc(labels_path);
  IdxHeader lh = read_header(lsrc, labels_path, 1, "labels");
  std::vector<uint8_t> lbytes(static_cast<size_t>(lh.payload));
  size_t lgot = lsrc.read(lbytes.data(), lbytes.size());
  JANUS_CHECK(lgot == lbytes.size(), "idx: ", labels_path, ": truncated: header says ", lh.payload,
              " labels, only ", lgot, " present");
  check_gzip_end(lsrc, labels_path, lh);

  ByteSource isrc(images_path);
  IdxHeader ih = read_header(isrc, images_path, 3, "images");
  const uint64_t n = ih.dims[0], rows = ih.dims[1], cols = ih.dims[2];
  JANUS_CHECK(n == lh.dims[0], "idx: ", images_path, " has ", n, " images but ", labels_path, " has ",
              lh.dims[0], " labels");

  Dataset d;
  d.sample_shape = Shape{static_cast<int64_t>(rows), static_cast<int64_t>(cols), 1};
  d.num_classes = num_classes;
  d.source = images_path;
  d.labels.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < d.labels.size(); ++i) {
    int label = lbytes[i];
    JANUS_CHECK(label < num_classes, "idx: ", labels_path, ": label ", i, " (byte offset ",
                lh.header_bytes + i, ") is ", label, ", out of range 0..", num_classes - 1);
    d.labels[i] = label;
  }

  d.x.resize(static_cast<size_t>(ih.payload));
  std::vector<uint8_t> chunk(1 << 20);
  size_t done = 0;
  while (done < d.x.size()) {
    size_t want = std::min(chunk.size(), d.x.size() - done);
    size_t got = isrc.read(chunk.data(), want);
    const size_t image_bytes = static_cast<size_t>(rows * cols);
    JANUS_CHECK(got == want, "idx: ", images_path, ": truncated: header says ", n, " images of ", rows, "x",
                cols, " but the data ends inside image ", (done + got) / image_bytes, " (byte offset ",
                ih.header_bytes + done + got, ")");
    float* dst = d.x.data() + done;
    for (size_t i = 0; i < got; ++i) dst[i] = static_cast<float>(chunk[i]);
    done += got;
  }
  check_gzip_end(isrc, images_path, ih);
  return d;
}

FashionMnistFiles find_fashion_mnist(const std::string& dir) {
  std::vector<std::string> dirs;
  if (!dir.empty()) {
    dirs.push_back(dir);
    dirs.push_back(data_detail::join(dir, "fashion-mnist"));
    dirs.push_back(data_detail::join(dir, "fashion_mnist"));
  }
  dirs.push_back("/usr/share/datasets/fashion-mnist");

  auto find = [](const std::string& d, const std::string& stem, const std::string& alt) -> std::string {
    for (const std::string& name : {stem, stem + ".gz", alt, alt + ".gz"}) {
      std::string p = data_detail::join(d, name);
      if (data_detail::is_file(p)) return p;
    }
    return "";
  };
  for (const auto& d : dirs) {
    if (!data_detail::is_dir(d)) continue;
    FashionMnistFiles f;
    f.dir = d;
    f.train_images = find(d, "train-images-idx3-ubyte", "train-images.idx3-ubyte");
    f.train_labels = find(d, "train-labels-idx1-ubyte", "train-labels.idx1-ubyte");
    f.test_images = find(d, "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte");
    f.test_labels = find(d, "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte");
    if (!f.train_images.empty() && !f.train_labels.empty() && !f.test_images.empty() &&
        !f.test_labels.empty())
      return f;
  }
  std::string where;
  for (const auto& d : dirs) where += "\n  " + d;
  throw Error(detail::concat(
      "fashion-mnist: the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
      "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) were not found; looked in:",
      where, "\ninstall them with `apt-get install dataset-fashion-mnist`, or name the folder that holds them "
      "(janus --data-dir, $JANUS_DATA_DIR)"));
}

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  FashionMnistFiles f = find_fashion_mnist(dir);
  Dataset d = train ? load_idx(f.train_images, f.train_labels, 10) : load_idx(f.test_images, f.test_labels, 10);
  d.class_names = fashion_mnist_class_names();
  return d;
}

}  // namespace janus
