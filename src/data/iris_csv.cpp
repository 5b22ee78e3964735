// Iris CSV (header; 4 numeric features; species name) -> dense Dataset.
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>

namespace janus {

namespace {

constexpr int kFeatures = 4;

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Dataset load_iris_csv(const std::string& path) {
  data_detail::file_size_or_throw(path, "iris csv");
  std::ifstream in(path);
  JANUS_CHECK(in, "iris csv: ", path, ": cannot open");

  Dataset d;
  d.sample_shape = Shape{kFeatures};
  d.source = path;

  std::string line;
  size_t line_no = 0;
  std::vector<std::string> header;
  // Header: the first non-blank line.
  while (std::getline(in, line)) {
    ++line_no;
    if (!trim(line).empty()) {
      header = split_commas(line);
      break;
    }
  }
  JANUS_CHECK(!header.empty(), "iris csv: ", path, ": file has no header row");
  JANUS_CHECK(header.size() == kFeatures + 1, "iris csv: ", path, " line ", line_no, ": header has ",
              header.size(), " fields, expected ", kFeatures + 1, " (4 features and the species)");
  auto field_name = [&](size_t i) {
    return detail::concat("field ", i + 1, " (", header[i].empty() ? std::string("unnamed") : header[i], ")");
  };

  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::vector<std::string> f = split_commas(line);
    JANUS_CHECK(f.size() >= kFeatures + 1, "iris csv: ", path, " line ", line_no, ": ",
                field_name(f.size()), " is missing (", f.size(), " fields, expected ", kFeatures + 1, ")");
    JANUS_CHECK(f.size() == kFeatures + 1, "iris csv: ", path, " line ", line_no, ": ", f.size(),
                " fields, expected ", kFeatures + 1);
    for (int j = 0; j < kFeatures; ++j) {
      const std::string& s = f[static_cast<size_t>(j)];
      JANUS_CHECK(!s.empty(), "iris csv: ", path, " line ", line_no, ": ", field_name(static_cast<size_t>(j)),
                  " is empty");
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      JANUS_CHECK(end && *end == '\0' && std::isfinite(v), "iris csv: ", path, " line ", line_no, ": ",
                  field_name(static_cast<size_t>(j)), " is not a finite number: '", s, "'");
      d.x.push_back(static_cast<float>(v));
    }
    const std::string& species = f[kFeatures];
    JANUS_CHECK(!species.empty(), "iris csv: ", path, " line ", line_no, ": ", field_name(kFeatures),
                " (species name) is empty");
    int label = -1;
    for (size_t c = 0; c < d.class_names.size(); ++c)
      if (d.class_names[c] == species) label = static_cast<int>(c);
    if (label < 0) {
      label = static_cast<int>(d.class_names.size());
      d.class_names.push_back(species);
    }
    d.labels.push_back(label);
  }
  JANUS_CHECK(!d.labels.empty(), "iris csv: ", path, ": no data rows after the header");
  d.num_classes = static_cast<int>(d.class_names.size());
  return d;
}

}  // namespace janus
