// CIFAR-10 binary batches -> NHWC float Dataset.
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <algorithm>
#include <fstream>

namespace janus {

namespace {

constexpr size_t kSide = 32;
constexpr size_t kPlane = kSide * kSide;      // 1024
constexpr size_t kPixels = 3 * kPlane;        // 3072
constexpr size_t kRecord = 1 + kPixels;       // 3073
constexpr size_t kChunkRecords = 512;         // read this many records at a time

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? std::string(".") : path.substr(0, pos);
}

// Ten non-empty lines of batches.meta.txt, or the standard names.
std::vector<std::string> class_names_near(const std::string& first_file) {
  std::ifstream in(data_detail::join(parent_dir(first_file), "batches.meta.txt"));
  if (in) {
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
      size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos) continue;
      names.push_back(line.substr(b));
    }
    if (names.size() == 10) return names;
  }
  return cifar10_class_names();
}

}  // namespace

std::vector<std::string> cifar10_class_names() {
  return {"airplane", "automobile", "bird", "cat", "deer",
          "dog",      "frog",       "horse", "ship", "truck"};
}

Dataset load_cifar10_batches(const std::vector<std::string>& files, bool ignore_labels) {
  JANUS_CHECK(!files.empty(), "cifar10: no batch files given");

  // Validate every file's size before allocating anything.
  std::vector<size_t> records(files.size());
  size_t total = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    uint64_t bytes = data_detail::file_size_or_throw(files[f], "cifar10");
    JANUS_CHECK(bytes != 0, "cifar10: ", files[f], ": file is empty");
    JANUS_CHECK(bytes % kRecord == 0, "cifar10: ", files[f], ": size ", bytes,
                " bytes is not a multiple of the ", kRecord, "-byte record (1 label + 3072 pixels); ",
                bytes / kRecord, " whole records and ", bytes % kRecord,
                " trailing bytes: truncated or not a CIFAR-10 binary batch");
    records[f] = static_cast<size_t>(bytes / kRecord);
    total += records[f];
    data_detail::check_decoded_size(total, kPixels * sizeof(float), "cifar10", files[f]);
  }

  Dataset d;
  d.sample_shape = Shape{static_cast<int64_t>(kSide), static_cast<int64_t>(kSide), 3};
  d.num_classes = 10;
  d.class_names = class_names_near(files.front());
  d.x.resize(total * kPixels);
  d.labels.resize(total);
  d.source = files.size() == 1 ? files.front()
                               : detail::concat(files.front(), " (+", files.size() - 1, " more)");

  std::vector<uint8_t> buf(kChunkRecords * kRecord);
  size_t out = 0;  // record index over all files
  for (size_t f = 0; f < files.size(); ++f) {
    data_detail::File file(files[f], "cifar10");
    size_t done = 0;
    while (done < records[f]) {
      size_t n = std::min(kChunkRecords, records[f] - done);
      size_t got = std::fread(buf.data(), 1, n * kRecord, file.f);
      JANUS_CHECK(got == n * kRecord, "cifar10: ", files[f], ": short read at record ", done + got / kRecord,
                  " (byte offset ", done * kRecord + got, ")");
      for (size_t r = 0; r < n; ++r) {
        const uint8_t* rec = buf.data() + r * kRecord;
        size_t index_in_file = done + r;
        if (ignore_labels) {
          d.labels[out] = -1;
        } else {
          int label = rec[0];
          JANUS_CHECK(label <= 9, "cifar10: ", files[f], ": record ", index_in_file, " (byte offset ",
                      index_in_file * kRecord, "): label ", label,
                      " out of range 0..9 (pass ignore_labels for unlabelled files)");
          d.labels[out] = label;
        }
        const uint8_t* red = rec + 1;
        const uint8_t* green = red + kPlane;
        const uint8_t* blue = green + kPlane;
        float* dst = d.x.data() + out * kPixels;
        for (size_t p = 0; p < kPlane; ++p) {
          dst[3 * p + 0] = static_cast<float>(red[p]);
          dst[3 * p + 1] = static_cast<float>(green[p]);
          dst[3 * p + 2] = static_cast<float>(blue[p]);
        }
        ++out;
      }
      done += n;
    }
  }
  return d;
}

std::string find_cifar10_dir(const std::string& data_dir) {
  std::vector<std::string> tried;
  for (const std::string& cand : {data_detail::join(data_dir, "cifar-10-batches-bin"), data_dir}) {
    tried.push_back(cand);
    if (data_detail::is_file(data_detail::join(cand, "data_batch_1.bin")) ||
        data_detail::is_file(data_detail::join(cand, "test_batch.bin")))
      return cand;
  }
  std::string where;
  for (const auto& t : tried) where += "\n  " + t;
  throw Error(detail::concat("cifar10: no data_batch_1.bin or test_batch.bin found; looked in:", where,
                             "\nrun scripts/download_cifar10.sh, or name the folder that holds them (janus --data-dir, $JANUS_DATA_DIR)"));
}

std::vector<std::string> cifar10_batch_files(const std::string& cifar_dir,
                                             const std::vector<int>& batch_numbers) {
  std::vector<std::string> out;
  out.reserve(batch_numbers.size());
  for (int b : batch_numbers)
    out.push_back(data_detail::join(cifar_dir, detail::concat("data_batch_", b, ".bin")));
  return out;
}

}  // namespace janus
