// Datasets, splits, standardisation, augmentation and the DataLoader.
#include <janus/data.hpp>
#include <janus/trainer.hpp>

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace janus;

namespace {

#ifndef JANUS_SOURCE_DIR
#define JANUS_SOURCE_DIR "."
#endif

std::string shared_data() { return std::string(JANUS_SOURCE_DIR) + "/../shared/data"; }

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("janus_test_data_") + std::to_string(::getpid()) + "_" +
                       (info ? std::string(info->test_suite_name()) + "_" + info->name() : "x");
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  if (!bytes.empty()) gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(gz);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A CIFAR record whose pixel (r, c, ch) is (label*7 + r + 2c + 50ch) mod 256.
std::vector<uint8_t> cifar_record(uint8_t label) {
  std::vector<uint8_t> rec(3073);
  rec[0] = label;
  for (int ch = 0; ch < 3; ++ch)
    for (int r = 0; r < 32; ++r)
      for (int c = 0; c < 32; ++c)
        rec[1 + ch * 1024 + r * 32 + c] = static_cast<uint8_t>((label * 7 + r + 2 * c + 50 * ch) % 256);
  return rec;
}

std::vector<uint8_t> cifar_file(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> out;
  for (uint8_t l : labels) {
    auto rec = cifar_record(l);
    out.insert(out.end(), rec.begin(), rec.end());
  }
  return out;
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  v.push_back(static_cast<uint8_t>(x >> 24));
  v.push_back(static_cast<uint8_t>(x >> 16));
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols, bool fill = true) {
  std::vector<uint8_t> v;
  put_be32(v, 0x00000803);
  put_be32(v, n);
  put_be32(v, rows);
  put_be32(v, cols);
  if (fill)
    for (uint32_t i = 0; i < n * rows * cols; ++i) v.push_back(static_cast<uint8_t>(i % 251));
  return v;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put_be32(v, 0x00000801);
  put_be32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

// Runs f, expects a janus::Error whose message contains every needle; returns the message.
template <class F>
std::string expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected janus::Error";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    return msg;
  }
  return "";
}

// A small labelled dataset of (4, 5, 3) images: value = 1000*i + position.
Dataset toy_images(size_t n, int classes = 3) {
  Dataset d;
  d.sample_shape = Shape{4, 5, 3};
  d.num_classes = classes;
  d.source = "toy";
  const size_t k = d.sample_numel();
  d.x.resize(n * k);
  for (size_t i = 0; i < n; ++i) {
    d.labels.push_back(static_cast<int>(i % static_cast<size_t>(classes)));
    for (size_t j = 0; j < k; ++j) d.x[i * k + j] = static_cast<float>(1000 * i + j + 1);
  }
  return d;
}

}  // namespace

// ---- CIFAR-10 ----------------------------------------------------------------

TEST(Cifar10, ReadsRecordsAsNHWC) {
  TempDir t;
  write_bytes(t.file("a.bin"), cifar_file({3, 9}));
  write_bytes(t.file("b.bin"), cifar_file({0}));
  Dataset d = load_cifar10_batches({t.file("a.bin"), t.file("b.bin")});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.sample_shape, (Shape{32, 32, 3}));
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.labels, (std::vector<int>{3, 9, 0}));
  ASSERT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[0], "airplane");
  const int labels[3] = {3, 9, 0};
  for (int i = 0; i < 3; ++i)
    for (int r : {0, 5, 31})
      for (int c : {0, 17, 31})
        for (int ch = 0; ch < 3; ++ch)
          EXPECT_EQ(d.x[static_cast<size_t>(i * 3072 + (r * 32 + c) * 3 + ch)],
                    static_cast<float>((labels[i] * 7 + r + 2 * c + 50 * ch) % 256));
}

TEST(Cifar10, ClassNamesFromMetaFile) {
  TempDir t;
  write_bytes(t.file("data_batch_1.bin"), cifar_file({1}));
  std::string names;
  for (int i = 0; i < 10; ++i) names += "class" + std::to_string(i) + "\n";
  write_text(t.file("batches.meta.txt"), names + "\n");
  Dataset d = load_cifar10_batches({t.file("data_batch_1.bin")});
  EXPECT_EQ(d.class_names[9], "class9");
  EXPECT_EQ(find_cifar10_dir(t.str()), t.str());
  EXPECT_EQ(cifar10_batch_files(t.str(), {1, 2}).back(), t.str() + "/data_batch_2.bin");
}

TEST(Cifar10, WrongSizeNamesFile) {
  TempDir t;
  auto bytes = cifar_file({1, 2});
  bytes.resize(bytes.size() - 5);
  write_bytes(t.file("short.bin"), bytes);
  expect_error([&] { load_cifar10_batches({t.file("short.bin")}); }, {"short.bin", "3073", "multiple"});
  write_bytes(t.file("empty.bin"), {});
  expect_error([&] { load_cifar10_batches({t.file("empty.bin")}); }, {"empty.bin", "empty"});
  expect_error([&] { load_cifar10_batches({t.file("missing.bin")}); }, {"missing.bin", "no such file"});
  expect_error([&] { load_cifar10_batches({}); }, {"no batch files"});
}

TEST(Cifar10, LabelOutOfRangeNamesRecordAndOffset) {
  TempDir t;
  write_bytes(t.file("bad.bin"), cifar_file({1, 10, 2}));
  expect_error([&] { load_cifar10_batches({t.file("bad.bin")}); },
               {"bad.bin", "record 1", "byte offset 3073", "label 10"});
  Dataset d = load_cifar10_batches({t.file("bad.bin")}, /*ignore_labels=*/true);
  EXPECT_EQ(d.labels, (std::vector<int>{-1, -1, -1}));
  EXPECT_EQ(d.x[3072 + 2], static_cast<float>((10 * 7 + 100) % 256));
  EXPECT_NO_THROW(d.validate(/*allow_unlabelled=*/true));
  EXPECT_THROW(d.validate(false), Error);
}

TEST(Cifar10, MissingDirectoryListsWhereItLooked) {
  TempDir t;
  expect_error([&] { find_cifar10_dir(t.str()); }, {"cifar-10-batches-bin", t.str(), "download_cifar10.sh", "JANUS_DATA_DIR"});
}

TEST(Cifar10, RealBatch) {
  const std::string dir = shared_data() + "/cifar-10-batches-bin";
  const std::string file = dir + "/data_batch_5.bin";
  if (!fs::exists(file)) GTEST_SKIP() << "no real CIFAR-10 batch at " << file;
  auto t0 = std::chrono::steady_clock::now();
  Dataset d = load_cifar10_batches({file});
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("loaded 10000 CIFAR-10 images in %.1f ms\n", ms);
  ASSERT_EQ(d.size(), 10000u);
  EXPECT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[0], "airplane");
  std::vector<int> count(10, 0);
  for (int l : d.labels) {
    ASSERT_TRUE(l >= 0 && l < 10);
    ++count[static_cast<size_t>(l)];
  }
  for (int c : count) EXPECT_GT(c, 800);
  auto [lo, hi] = std::minmax_element(d.x.begin(), d.x.end());
  EXPECT_GE(*lo, 0.0f);
  EXPECT_LE(*hi, 255.0f);
  EXPECT_GT(*hi, 200.0f);
  EXPECT_EQ(find_cifar10_dir(shared_data()), dir);
}

// ---- IDX -----------------------------------------------------------------------

TEST(Idx, PlainAndGzipGiveTheSameData) {
  TempDir t;
  auto images = idx_images(5, 3, 4);
  auto labels = idx_labels({0, 9, 3, 3, 1});
  write_bytes(t.file("img"), images);
  write_bytes(t.file("lab"), labels);
  write_gzip(t.file("img.gz"), images);
  write_gzip(t.file("lab.gz"), labels);
  Dataset plain = load_idx(t.file("img"), t.file("lab"));
  Dataset gz = load_idx(t.file("img.gz"), t.file("lab.gz"));
  EXPECT_EQ(plain.sample_shape, (Shape{3, 4, 1}));
  EXPECT_EQ(plain.labels, (std::vector<int>{0, 9, 3, 3, 1}));
  ASSERT_EQ(plain.x.size(), 60u);
  for (size_t i = 0; i < 60; ++i) EXPECT_EQ(plain.x[i], static_cast<float>(i % 251));
  EXPECT_EQ(plain.x, gz.x);
  EXPECT_EQ(plain.labels, gz.labels);
}

TEST(Idx, BadMagic) {
  TempDir t;
  auto images = idx_images(2, 2, 2);
  images[3] = 0x02;  // 0x00000802
  write_bytes(t.file("img"), images);
  write_bytes(t.file("lab"), idx_labels({0, 1}));
  expect_error([&] { load_idx(t.file("img"), t.file("lab")); }, {"img", "bad magic", "0x00000802", "0x00000803"});
  // Images and labels swapped.
  write_bytes(t.file("img2"), idx_images(2, 2, 2));
  expect_error([&] { load_idx(t.file("lab"), t.file("img2")); }, {"bad magic"});
}

TEST(Idx, CountsAndLabelRange) {
  TempDir t;
  write_bytes(t.file("img"), idx_images(3, 2, 2));
  write_bytes(t.file("lab2"), idx_labels({0, 1}));
  expect_error([&] { load_idx(t.file("img"), t.file("lab2")); }, {"3 images", "2 labels"});
  write_bytes(t.file("lab3"), idx_labels({0, 12, 1}));
  expect_error([&] { load_idx(t.file("img"), t.file("lab3")); }, {"lab3", "label 1", "12", "0..9"});
  EXPECT_NO_THROW(load_idx(t.file("img"), t.file("lab3"), 13));
}

TEST(Idx, WrongSizeAndHugeHeaderRefusedBeforeAllocating) {
  TempDir t;
  write_bytes(t.file("lab"), idx_labels({0, 1}));
  auto images = idx_images(2, 2, 2);
  images.pop_back();
  write_bytes(t.file("short"), images);
  expect_error([&] { load_idx(t.file("short"), t.file("lab")); }, {"short", "header says", "the file has"});
  // A header claiming 2^31 images of 32x32 (2 TiB) in a 16-byte file.
  auto huge = idx_images(0x80000000u, 32, 32, /*fill=*/false);
  write_bytes(t.file("huge"), huge);
  write_bytes(t.file("hugelab"), idx_labels({0}));
  expect_error([&] { load_idx(t.file("huge"), t.file("hugelab")); }, {"huge", "header says"});
  write_gzip(t.file("huge.gz"), huge);
  expect_error([&] { load_idx(t.file("huge.gz"), t.file("hugelab")); }, {"huge.gz", "cannot hold"});
  // Label file claiming 2^31 labels.
  std::vector<uint8_t> hl;
  put_be32(hl, 0x00000801);
  put_be32(hl, 0x80000000u);
  write_gzip(t.file("hl.gz"), hl);
  expect_error([&] { load_idx(t.file("img"), t.file("hl.gz")); }, {"hl.gz", "cannot hold"});
}

TEST(Idx, TruncatedAndTrailingGzip) {
  TempDir t;
  write_gzip(t.file("lab.gz"), idx_labels({0, 1, 2}));
  auto images = idx_images(3, 8, 8);
  auto cut = images;
  cut.resize(cut.size() - 70);  // ends inside image 1
  write_gzip(t.file("cut.gz"), cut);
  expect_error([&] { load_idx(t.file("cut.gz"), t.file("lab.gz")); }, {"cut.gz", "truncated", "image 1"});
  auto longer = images;
  longer.push_back(7);
  write_gzip(t.file("long.gz"), longer);
  expect_error([&] { load_idx(t.file("long.gz"), t.file("lab.gz")); }, {"long.gz", "trailing"});
  write_bytes(t.file("tiny"), {0, 0});
  expect_error([&] { load_idx(t.file("tiny"), t.file("lab.gz")); }, {"tiny", "too short"});
}

TEST(Idx, RealFashionMnist) {
  FashionMnistFiles f;
  try {
    f = find_fashion_mnist("");
  } catch (const Error& e) {
    GTEST_SKIP() << "Fashion-MNIST not installed: " << e.what();
  }
  auto t0 = std::chrono::steady_clock::now();
  Dataset test = load_fashion_mnist(f.dir, /*train=*/false);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("loaded 10000 Fashion-MNIST images in %.1f ms\n", ms);
  ASSERT_EQ(test.size(), 10000u);
  EXPECT_EQ(test.sample_shape, (Shape{28, 28, 1}));
  EXPECT_EQ(test.class_names[9], "Ankle boot");
  std::vector<int> count(10, 0);
  for (int l : test.labels) ++count[static_cast<size_t>(l)];
  for (int c : count) EXPECT_EQ(c, 1000);
  EXPECT_EQ(*std::max_element(test.x.begin(), test.x.end()), 255.0f);
}

TEST(Idx, FashionMnistMissingListsWhereItLooked) {
  TempDir t;
  // The system copy may exist; a dir with only some files must not be picked.
  write_bytes(t.file("train-images-idx3-ubyte.gz"), {1});
  try {
    FashionMnistFiles f = find_fashion_mnist(t.str());
    EXPECT_EQ(f.dir, "/usr/share/datasets/fashion-mnist");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(t.str()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("/usr/share/datasets/fashion-mnist"), std::string::npos);
  }
}

// ---- Iris ------------------------------------------------------------------------

TEST(Iris, ParsesAndOrdersClassesByFirstAppearance) {
  TempDir t;
  write_text(t.file("i.csv"),
             "a,b,c,d,species\r\n5.1,3.5,1.4,0.2,zeta\r\n\r\n6,2.2,4,1,alpha\n 7.0 , 1e0 ,2,3, zeta \n");
  Dataset d = load_iris_csv(t.file("i.csv"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.sample_shape, (Shape{4}));
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"zeta", "alpha"}));
  EXPECT_EQ(d.labels, (std::vector<int>{0, 1, 0}));
  EXPECT_FLOAT_EQ(d.x[0], 5.1f);
  EXPECT_FLOAT_EQ(d.x[9], 1.0f);
}

// RFC 4180: quoted fields with commas, doubled quotes and line breaks; CRLF;
// a byte-order mark; a last record without a line end. Line numbers in
// messages count physical lines, a quoted line break included.
TEST(Iris, ReadsRfc4180Quoting) {
  TempDir t;
  write_text(t.file("q.csv"), "\xEF\xBB\xBF\"a\",b,c,d,species\r\n\"5.1\",3.5,1.4,0.2,\"setosa, \"\"wild\"\"\"\r\n"
                              "6,2.2,4,1,\"two\r\nlines\"\r\n7, \"2\" ,3,4,\"setosa, \"\"wild\"\"\"");
  Dataset d = load_iris_csv(t.file("q.csv"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa, \"wild\"", "two\r\nlines"}));
  EXPECT_EQ(d.labels, (std::vector<int>{0, 1, 0}));
  EXPECT_FLOAT_EQ(d.x[0], 5.1f);
  EXPECT_FLOAT_EQ(d.x[9], 2.0f);
  write_text(t.file("late.csv"), "a,b,c,d,species\n1,2,3,4,\"x\ny\"\n1,2,3,4,\"x\"z\n");
  expect_error([&] { load_iris_csv(t.file("late.csv")); }, {"late.csv", "line 4", "field 5", "after its closing quote"});
  write_text(t.file("open.csv"), "a,b,c,d,species\n1,2,3,4,\"x\n");
  expect_error([&] { load_iris_csv(t.file("open.csv")); }, {"line 2", "never closed"});
  write_text(t.file("bare.csv"), "a,b,c,d,species\n1,2\",3,4,x\n");
  expect_error([&] { load_iris_csv(t.file("bare.csv")); }, {"line 2", "field 2", "not quoted"});
}

// float32 is the stored type: a value finite as a double but beyond float32
// (1e39 would become +inf) is refused; one that underflows rounds to 0.
TEST(Iris, RefusesValuesBeyondFloat32) {
  TempDir t;
  write_text(t.file("big.csv"), "a,b,c,d,species\n1,2,3,4,x\n1,-1e39,3,4,x\n");
  expect_error([&] { load_iris_csv(t.file("big.csv")); }, {"big.csv", "line 3", "field 2 (b)", "out of float32 range", "'-1e39'"});
  write_text(t.file("edge.csv"), "a,b,c,d,species\n3.4028234e38,1e-50,3,4,x\n");
  Dataset d = load_iris_csv(t.file("edge.csv"));
  EXPECT_EQ(d.x[0], 3.4028234e38f);
  EXPECT_EQ(d.x[1], 0.0f);
  std::string nul = "a,b,c,d,species\n1";
  nul += '\0';
  nul += "5,2,3,4,x\n";
  write_text(t.file("nul.csv"), nul);
  expect_error([&] { load_iris_csv(t.file("nul.csv")); }, {"line 2", "field 1", "not a finite number"});
}

TEST(Iris, MalformedRowsNameFileLineAndField) {
  TempDir t;
  write_text(t.file("missing.csv"), "a,b,c,d,species\n1,2,3,4,x\n1,2,3,x\n");
  expect_error([&] { load_iris_csv(t.file("missing.csv")); }, {"missing.csv", "line 3", "field 5", "missing"});
  write_text(t.file("nonnum.csv"), "a,b,c,d,species\n1,2,3,4,x\n1,2,abc,4,x\n");
  expect_error([&] { load_iris_csv(t.file("nonnum.csv")); }, {"nonnum.csv", "line 3", "field 3 (c)", "'abc'"});
  write_text(t.file("empty.csv"), "a,b,c,d,species\n1,,3,4,x\n");
  expect_error([&] { load_iris_csv(t.file("empty.csv")); }, {"line 2", "field 2 (b)", "empty"});
  write_text(t.file("junk.csv"), "a,b,c,d,species\n1,2,3,4.5.6,x\n");
  expect_error([&] { load_iris_csv(t.file("junk.csv")); }, {"line 2", "field 4", "4.5.6"});
  write_text(t.file("nan.csv"), "a,b,c,d,species\n1,2,3,nan,x\n");
  expect_error([&] { load_iris_csv(t.file("nan.csv")); }, {"line 2", "finite"});
  write_text(t.file("extra.csv"), "a,b,c,d,species\n1,2,3,4,x,y\n");
  expect_error([&] { load_iris_csv(t.file("extra.csv")); }, {"line 2", "6 fields"});
  write_text(t.file("nospecies.csv"), "a,b,c,d,species\n1,2,3,4,\n");
  expect_error([&] { load_iris_csv(t.file("nospecies.csv")); }, {"line 2", "species"});
  write_text(t.file("header.csv"), "a,b,c\n");
  expect_error([&] { load_iris_csv(t.file("header.csv")); }, {"header.csv", "header"});
  write_text(t.file("norows.csv"), "a,b,c,d,species\n");
  expect_error([&] { load_iris_csv(t.file("norows.csv")); }, {"no data rows"});
  expect_error([&] { load_iris_csv(t.file("nope.csv")); }, {"nope.csv"});
}

TEST(Iris, BundledCopyMatchesSharedData) {
  Dataset d = load_iris_csv(default_iris_path());
  ASSERT_EQ(d.size(), 150u);
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_FLOAT_EQ(d.x[0], 5.1f);
  const std::string shared = shared_data() + "/iris.csv";
  if (!fs::exists(shared)) GTEST_SKIP() << "no shared Iris at " << shared;
  Dataset s = load_iris_csv(shared);
  EXPECT_EQ(s.x, d.x);
  EXPECT_EQ(s.labels, d.labels);
}

// ---- data directory ----------------------------------------------------------

TEST(DataDir, FlagThenEnvironment) {
  TempDir t;
  EXPECT_EQ(resolve_data_dir(t.str()), t.str());
  // The error names where the directory came from: a library caller's argument, or the CLI's option.
  const std::string library_msg = expect_error([&] { resolve_data_dir(t.str() + "/nope"); },
                                               {"'" + t.str() + "/nope' (from the dir argument of resolve_data_dir())"});
  EXPECT_EQ(library_msg.find("--data-dir"), std::string::npos) << library_msg;
  expect_error([&] { resolve_data_dir(t.str() + "/nope", "--data-dir"); }, {"(from --data-dir)", "nope"});

  const char* old = std::getenv("JANUS_DATA_DIR");
  std::string saved = old ? old : "";
  ::setenv("JANUS_DATA_DIR", t.str().c_str(), 1);
  EXPECT_EQ(resolve_data_dir(""), t.str());
  // A missing $JANUS_DATA_DIR falls through; if nothing else exists the error lists it.
  ::setenv("JANUS_DATA_DIR", (t.str() + "/gone").c_str(), 1);
  fs::path cwd = fs::current_path();
  fs::current_path(t.str());
  try {
    std::string found = resolve_data_dir("");
    EXPECT_TRUE(fs::is_directory(found));
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(t.str() + "/gone"), std::string::npos) << msg;
    EXPECT_NE(msg.find("./data"), std::string::npos) << msg;
    EXPECT_NE(msg.find("../shared/data"), std::string::npos) << msg;
    EXPECT_NE(msg.find("give one with the dir argument of resolve_data_dir()"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("--data-dir"), std::string::npos) << msg;
  }
  fs::current_path(cwd);
  if (old)
    ::setenv("JANUS_DATA_DIR", saved.c_str(), 1);
  else
    ::unsetenv("JANUS_DATA_DIR");
}

// load_run_data (what train_run and `janus evaluate` call) names its own argument, or the caller's.
TEST(DataDir, RunDataNamesWhereTheDirectoryCameFrom) {
  const RunConfig cfg = parse_run_config(Json::parse(R"({"name": "d", "dataset": {"name": "iris"},
      "model": {"layers": [{"type": "dense", "n_out": 3}]}})"), "run.json");
  expect_error([&] { load_run_data(cfg, "/nonexistent/janus-data"); },
               {"'/nonexistent/janus-data' (from the data_dir argument of load_run_data())"});
  expect_error([&] { load_run_data(cfg, "/nonexistent/janus-data", "--data-dir"); },
               {"'/nonexistent/janus-data' (from --data-dir)"});
}

// ---- standardiser and splits -----------------------------------------------------

TEST(Standardizer, FitsOnTrainSplitOnly) {
  Dataset d = toy_images(10);
  Split s = split_tail(d, 3);
  ASSERT_EQ(s.train.size(), 7u);
  ASSERT_EQ(s.validation.size(), 3u);
  EXPECT_EQ(s.validation.labels[0], d.labels[7]);
  EXPECT_EQ(s.validation.x[0], d.x[7 * 60]);

  Standardizer st;
  st.fit(s.train);
  ASSERT_EQ(st.channels(), 3u);
  // Reference statistics over the training samples only.
  for (size_t c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    size_t n = 0;
    for (size_t i = c; i < s.train.x.size(); i += 3, ++n) sum += s.train.x[i];
    double mean = sum / static_cast<double>(n);
    for (size_t i = c; i < s.train.x.size(); i += 3) sq += (s.train.x[i] - mean) * (s.train.x[i] - mean);
    EXPECT_NEAR(st.mean()[c], mean, 1e-3);
    EXPECT_NEAR(st.stddev()[c], std::sqrt(sq / static_cast<double>(n)), 1e-3);
  }
  Dataset train = s.train;
  st.apply(train);
  for (size_t c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    size_t n = 0;
    for (size_t i = c; i < train.x.size(); i += 3, ++n) sum += train.x[i], sq += train.x[i] * train.x[i];
    EXPECT_NEAR(sum / static_cast<double>(n), 0.0, 1e-4);
    EXPECT_NEAR(sq / static_cast<double>(n), 1.0, 1e-4);
  }
  // Validation standardised with the train statistics (not its own).
  Dataset val = s.validation;
  st.apply(val);
  EXPECT_FLOAT_EQ(val.x[0], (s.validation.x[0] - st.mean()[0]) / st.stddev()[0]);
  st.invert(val.x.data(), val.x.size());
  EXPECT_NEAR(val.x[5], s.validation.x[5], 1e-2);

  auto [m, sd] = st.state();
  Standardizer back = Standardizer::from_state(m, sd);
  EXPECT_EQ(back.mean(), st.mean());
  EXPECT_EQ(back.stddev(), st.stddev());
  EXPECT_THROW(Standardizer::from_state({1, 2}, {1}), Error);
  EXPECT_THROW(Standardizer::from_state({1}, {0}), Error);
  Standardizer unfitted;
  EXPECT_THROW(unfitted.apply(train), Error);
  Dataset dense;
  dense.sample_shape = Shape{4};
  dense.num_classes = 1;
  dense.x.assign(8, 1.0f);
  dense.labels = {0, 0};
  EXPECT_THROW(st.apply(dense), Error);
}

TEST(Standardizer, ConstantChannelGetsUnitStd) {
  std::vector<float> x = {1, 5, 1, 7, 1, 9};
  Standardizer st;
  st.fit(x.data(), x.size(), 2);
  EXPECT_EQ(st.stddev()[0], 1.0f);
  st.apply(x.data(), x.size());
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_NEAR(x[1], -std::sqrt(1.5), 1e-5);
}

TEST(Split, StratifiedRandomIsBalancedDeterministicAndDisjoint) {
  Dataset iris = load_iris_csv(std::string(JANUS_SOURCE_DIR) + "/datasets/iris.csv");
  Split a = split_random(iris, 0.2, 42);
  Split b = split_random(iris, 0.2, 42);
  Split c = split_random(iris, 0.2, 43);
  ASSERT_EQ(a.validation.size(), 30u);
  ASSERT_EQ(a.train.size(), 120u);
  std::vector<int> per(3, 0);
  for (int l : a.validation.labels) ++per[static_cast<size_t>(l)];
  EXPECT_EQ(per, (std::vector<int>{10, 10, 10}));
  EXPECT_EQ(a.validation.x, b.validation.x);
  EXPECT_NE(a.validation.x, c.validation.x);
  // Every sample lands in exactly one part.
  std::multiset<std::vector<float>> all, parts;
  auto rows = [](const Dataset& d, std::multiset<std::vector<float>>& out) {
    for (size_t i = 0; i < d.size(); ++i) out.insert(std::vector<float>(d.sample(i), d.sample(i) + 4));
  };
  rows(iris, all);
  rows(a.train, parts);
  rows(a.validation, parts);
  EXPECT_EQ(all, parts);

  Split r = split_random(iris, 0.25, 7, /*stratified=*/false);
  EXPECT_EQ(r.validation.size(), 38u);
  EXPECT_EQ(r.train.size(), 112u);
  EXPECT_THROW(split_random(iris, 1.5, 1), Error);
  EXPECT_THROW(split_tail(iris, 151), Error);
}

TEST(Split, KFoldPartitionsTheDataIntoBalancedFolds) {
  // toy_images: sample i has class i % 3 and a unique first value 1000*i + 1.
  const Dataset d = toy_images(47);
  const int K = 5;
  std::vector<int> seen(d.size(), 0);
  for (int k = 0; k < K; ++k) {
    const Split s = split_kfold(d, K, k, 11);
    ASSERT_EQ(s.train.size() + s.validation.size(), d.size());
    // 47 samples in 5 folds: sizes 9 or 10; per class, counts differ by at most one.
    EXPECT_GE(s.validation.size(), 9u);
    EXPECT_LE(s.validation.size(), 10u);
    std::vector<int> per(3, 0);
    for (int l : s.validation.labels) ++per[static_cast<size_t>(l)];
    EXPECT_LE(*std::max_element(per.begin(), per.end()) - *std::min_element(per.begin(), per.end()), 1) << "fold " << k;
    std::set<size_t> in_fold;
    for (size_t i = 0; i < s.validation.size(); ++i) {
      const size_t id = static_cast<size_t>(s.validation.sample(i)[0]) / 1000;
      ASSERT_LT(id, d.size());
      ++seen[id];
      in_fold.insert(id);
      EXPECT_EQ(s.validation.labels[i], static_cast<int>(id % 3));
    }
    for (size_t i = 0; i < s.train.size(); ++i)
      EXPECT_EQ(in_fold.count(static_cast<size_t>(s.train.sample(i)[0]) / 1000), 0u) << "sample in both parts";
    // File order is kept inside each part.
    for (size_t i = 1; i < s.validation.size(); ++i) EXPECT_LT(s.validation.sample(i - 1)[0], s.validation.sample(i)[0]);
  }
  // The folds partition the data: every sample is tested exactly once.
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(seen[i], 1) << "sample " << i;
  // Seeded: same seed, same fold; another seed, another fold.
  EXPECT_EQ(split_kfold(d, K, 2, 11).validation.x, split_kfold(d, K, 2, 11).validation.x);
  EXPECT_NE(split_kfold(d, K, 2, 11).validation.x, split_kfold(d, K, 2, 12).validation.x);
  // Leave-one-out is the case folds == size.
  EXPECT_EQ(split_kfold(d, 47, 46, 3).validation.size(), 1u);
  EXPECT_THROW(split_kfold(d, 1, 0, 0), Error);
  EXPECT_THROW(split_kfold(d, 48, 0, 0), Error);
  EXPECT_THROW(split_kfold(d, 5, 5, 0), Error);
  EXPECT_THROW(split_kfold(d, 5, -1, 0), Error);
}

TEST(Split, SeededPermutation) {
  auto p = seeded_permutation(1000, 5, 0);
  auto q = seeded_permutation(1000, 5, 0);
  auto r = seeded_permutation(1000, 5, 1);
  EXPECT_EQ(p, q);
  EXPECT_NE(p, r);
  std::vector<size_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_TRUE(seeded_permutation(0, 1, 1).empty());
}

// ---- augmentation --------------------------------------------------------------

TEST(Augment, CropAndFlipGeometry) {
  const int R = 6, C = 7, CH = 2;
  std::vector<float> img(static_cast<size_t>(R * C * CH));
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i + 1);
  auto at = [&](const std::vector<float>& v, int r, int c, int ch) {
    return v[static_cast<size_t>((r * C + c) * CH + ch)];
  };
  std::vector<float> out(img.size());
  AugmentOptions opts;
  opts.crop_pad = 2;
  opts.hflip = true;
  // Every output is the source shifted by (dy, dx) in [-2, 2], maybe
  // flipped, with zeros where the window leaves the image. Identify the
  // transform from the output and check all pixels.
  std::set<std::tuple<int, int, bool>> seen;
  for (uint64_t s = 0; s < 400; ++s) {
    augment_image(img.data(), out.data(), R, C, CH, opts, 9, 0, s);
    bool matched = false;
    for (int dy = -2; dy <= 2 && !matched; ++dy)
      for (int dx = -2; dx <= 2 && !matched; ++dx)
        for (bool flip : {false, true}) {
          bool ok = true;
          for (int r = 0; r < R && ok; ++r)
            for (int c = 0; c < C && ok; ++c) {
              int sr = r + dy, sc = flip ? C - 1 - c + dx : c + dx;
              for (int ch = 0; ch < CH; ++ch) {
                float want = (sr < 0 || sr >= R || sc < 0 || sc >= C) ? 0.0f : at(img, sr, sc, ch);
                if (at(out, r, c, ch) != want) ok = false;
              }
            }
          if (ok) {
            matched = true;
            seen.insert({dy, dx, flip});
            break;
          }
        }
    ASSERT_TRUE(matched) << "sample " << s;
  }
  EXPECT_GT(seen.size(), 40u);  // of 50 possible transforms
}

TEST(Augment, DeterministicFromSeedEpochIndex) {
  Dataset d = toy_images(1);
  AugmentOptions opts;
  opts.crop_pad = 2;
  opts.hflip = true;
  std::vector<float> a(60), b(60);
  int differ_epoch = 0, differ_seed = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    augment_image(d.x.data(), a.data(), 4, 5, 3, opts, 1, 2, i);
    augment_image(d.x.data(), b.data(), 4, 5, 3, opts, 1, 2, i);
    EXPECT_EQ(a, b);
    augment_image(d.x.data(), b.data(), 4, 5, 3, opts, 1, 3, i);
    differ_epoch += a != b;
    augment_image(d.x.data(), b.data(), 4, 5, 3, opts, 2, 2, i);
    differ_seed += a != b;
  }
  EXPECT_GT(differ_epoch, 30);
  EXPECT_GT(differ_seed, 30);
  // No augmentation: identity.
  augment_image(d.x.data(), a.data(), 4, 5, 3, AugmentOptions{}, 1, 2, 3);
  EXPECT_EQ(a, d.x);
}

// ---- loader --------------------------------------------------------------------

namespace {

std::vector<std::vector<size_t>> epoch_indices(DataLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<std::vector<size_t>> out;
  Batch b;
  while (loader.next(b)) out.push_back(b.indices);
  return out;
}

}  // namespace

TEST(DataLoader, EverySampleOncePerEpochAndBatchContents) {
  auto d = std::make_shared<Dataset>(toy_images(23));
  LoaderOptions o;
  o.batch_size = 5;
  o.seed = 11;
  DataLoader loader(d, o);
  EXPECT_EQ(loader.num_batches(), 5u);
  for (int epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch(epoch);
    std::vector<int> seen(23, 0);
    Batch b;
    size_t batches = 0;
    while (loader.next(b)) {
      ++batches;
      EXPECT_EQ(b.size, batches == 5 ? 3 : 5);
      EXPECT_EQ(b.x_shape, (Shape{b.size, 4, 5, 3}));
      ASSERT_EQ(b.x.size(), static_cast<size_t>(b.size) * 60);
      ASSERT_EQ(b.y_onehot.size(), static_cast<size_t>(b.size) * 3);
      for (int i = 0; i < b.size; ++i) {
        size_t idx = b.indices[static_cast<size_t>(i)];
        ++seen[idx];
        EXPECT_EQ(b.labels[static_cast<size_t>(i)], d->labels[idx]);
        EXPECT_EQ(b.x[static_cast<size_t>(i) * 60 + 7], d->x[idx * 60 + 7]);
        for (int k = 0; k < 3; ++k)
          EXPECT_EQ(b.y_onehot[static_cast<size_t>(i * 3 + k)], k == d->labels[idx] ? 1.0f : 0.0f);
      }
    }
    EXPECT_EQ(batches, 5u);
    for (int s : seen) EXPECT_EQ(s, 1);
    EXPECT_FALSE(loader.next(b));  // stays at the end until the next epoch
  }
}

TEST(DataLoader, ShufflesDifferAcrossEpochsSameForSameSeed) {
  auto d = std::make_shared<Dataset>(toy_images(100));
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 3;
  DataLoader a(d, o), b(d, o);
  auto a0 = epoch_indices(a, 0), a1 = epoch_indices(a, 1);
  EXPECT_NE(a0, a1);
  EXPECT_EQ(a0, epoch_indices(b, 0));
  EXPECT_EQ(a1, epoch_indices(b, 1));
  // Resumable: a fresh loader started at epoch 1 sees epoch 1.
  DataLoader resumed(d, o);
  EXPECT_EQ(epoch_indices(resumed, 1), a1);
  o.seed = 4;
  DataLoader other(d, o);
  EXPECT_NE(epoch_indices(other, 0), a0);
  o.shuffle = false;
  DataLoader ordered(d, o);
  auto first = epoch_indices(ordered, 5);
  EXPECT_EQ(first[0], (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}));
}

TEST(DataLoader, DropLastAndImplicitFirstEpoch) {
  Dataset d = toy_images(23);
  LoaderOptions o;
  o.batch_size = 5;
  o.drop_last = true;
  DataLoader loader(d, o);  // non-owning
  EXPECT_EQ(loader.num_batches(), 4u);
  EXPECT_EQ(loader.num_samples(), 20u);
  Batch b;
  int n = 0;
  while (loader.next(b)) {
    EXPECT_EQ(b.size, 5);
    ++n;
  }
  EXPECT_EQ(n, 4);
  EXPECT_EQ(loader.epoch(), 0);
}

TEST(DataLoader, LabelSmoothingAndUnlabelled) {
  Dataset d = toy_images(4);
  d.labels[3] = -1;
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  o.label_smoothing = 0.3f;
  DataLoader loader(d, o);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_FLOAT_EQ(b.y_onehot[0], 1.0f - 0.3f + 0.1f);
  EXPECT_FLOAT_EQ(b.y_onehot[1], 0.1f);
  EXPECT_FLOAT_EQ(b.y_onehot[0] + b.y_onehot[1] + b.y_onehot[2], 1.0f);
  EXPECT_EQ(b.y_onehot[9], 0.0f);
  EXPECT_EQ(b.y_onehot[11], 0.0f);
  o.label_smoothing = 1.0f;
  EXPECT_THROW(DataLoader(d, o), Error);
  o.label_smoothing = 0;
  o.batch_size = 0;
  EXPECT_THROW(DataLoader(d, o), Error);
  Dataset bad = toy_images(4);
  bad.labels[0] = 3;
  o.batch_size = 2;
  EXPECT_THROW(DataLoader(bad, o), Error);
  Dataset dense;
  dense.sample_shape = Shape{4};
  dense.num_classes = 2;
  dense.x.assign(8, 0.0f);
  dense.labels = {0, 1};
  o.augment.hflip = true;
  EXPECT_THROW(DataLoader(dense, o), Error);
}

TEST(DataLoader, BackgroundAndSynchronousGiveIdenticalAugmentedBatches) {
  auto d = std::make_shared<Dataset>(toy_images(37));
  LoaderOptions o;
  o.batch_size = 6;
  o.seed = 99;
  o.augment.crop_pad = 2;
  o.augment.hflip = true;
  o.prefetch = 3;
  DataLoader bg(d, o);
  o.background = false;
  DataLoader sync(d, o);
  for (int epoch : {0, 1, 4}) {
    bg.start_epoch(epoch);
    sync.start_epoch(epoch);
    Batch a, b;
    while (bg.next(a)) {
      ASSERT_TRUE(sync.next(b));
      EXPECT_EQ(a.x, b.x);
      EXPECT_EQ(a.indices, b.indices);
    }
    EXPECT_FALSE(sync.next(b));
  }
}

TEST(DataLoader, AugmentationDependsOnSampleNotPosition) {
  auto d = std::make_shared<Dataset>(toy_images(20));
  LoaderOptions o;
  o.batch_size = 20;
  o.seed = 5;
  o.augment.crop_pad = 1;
  o.augment.hflip = true;
  DataLoader shuffled(d, o);
  o.shuffle = false;
  o.batch_size = 3;
  DataLoader ordered(d, o);
  shuffled.start_epoch(2);
  ordered.start_epoch(2);
  Batch s, b;
  ASSERT_TRUE(shuffled.next(s));
  while (ordered.next(b)) {
    for (int i = 0; i < b.size; ++i) {
      size_t idx = b.indices[static_cast<size_t>(i)];
      size_t pos = static_cast<size_t>(std::find(s.indices.begin(), s.indices.end(), idx) - s.indices.begin());
      ASSERT_LT(pos, s.indices.size());
      EXPECT_TRUE(std::equal(b.x.begin() + i * 60, b.x.begin() + (i + 1) * 60, s.x.begin() + static_cast<long>(pos) * 60));
    }
  }
  // And it actually changes the images.
  Batch plain;
  o.augment = AugmentOptions{};
  o.batch_size = 20;
  DataLoader none(d, o);
  ASSERT_TRUE(none.next(plain));
  EXPECT_EQ(plain.x, d->x);
  EXPECT_NE(b.x, std::vector<float>(d->x.end() - 2 * 60, d->x.end()));
}

TEST(DataLoader, StopsCleanlyMidEpoch) {
  auto d = std::make_shared<Dataset>(toy_images(500));
  LoaderOptions o;
  o.batch_size = 4;
  o.prefetch = 2;
  o.augment.crop_pad = 1;
  for (int round = 0; round < 20; ++round) {
    DataLoader loader(d, o);
    loader.start_epoch(round);
    Batch b;
    for (int i = 0; i < round % 4; ++i) ASSERT_TRUE(loader.next(b));
    if (round % 2) loader.start_epoch(round + 1);  // restart mid-epoch
    // Destructor runs with the worker blocked on a full queue.
  }
  // Restarting mid-epoch gives the full new epoch.
  DataLoader loader(d, o);
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  loader.start_epoch(1);
  size_t n = 0;
  while (loader.next(b)) n += static_cast<size_t>(b.size);
  EXPECT_EQ(n, 500u);
}

TEST(DataLoader, RealCifarThroughput) {
  const std::string file = shared_data() + "/cifar-10-batches-bin/data_batch_1.bin";
  if (!fs::exists(file)) GTEST_SKIP() << "no real CIFAR-10 batch at " << file;
  auto d = std::make_shared<Dataset>(load_cifar10_batches({file}));
  Standardizer st;
  st.fit(*d);
  st.apply(*d);
  LoaderOptions o;
  o.batch_size = 128;
  o.seed = 1;
  o.augment.crop_pad = 4;
  o.augment.hflip = true;
  DataLoader loader(d, o);
  auto t0 = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  Batch b;
  size_t n = 0;
  while (loader.next(b)) n += static_cast<size_t>(b.size);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("one augmented CIFAR epoch of %zu images in %.1f ms\n", n, ms);
  EXPECT_EQ(n, 10000u);
}
