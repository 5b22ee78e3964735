// Iris CSV (header; 4 numeric features; species name) -> dense Dataset.
//
// The file is read as RFC 4180 CSV: records end with CRLF or LF (the last
// one may lack it), fields are separated by commas, and a field may be
// quoted ("..."), in which case it may hold commas, line breaks and doubled
// quotes ("" = one "). Beyond the RFC, as Python's csv module and spreadsheet
// exports do: a UTF-8 byte-order mark before the header is skipped, blank
// lines are skipped, and spaces around a field are not part of it. A quote
// inside an unquoted field, text after a closing quote and a quote left open
// at the end of the file are refused, naming the line.
//
// Every feature is stored as float32: a value that is not a finite number or
// lies outside float32's range (|v| > 3.4028235e38, e.g. 1e39, which is
// finite as a double but +inf as a float) is refused, naming the file, line
// and field. Values below float32's smallest subnormal round to 0, as in
// every float32 conversion (numpy, PyTorch).
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <cfloat>
#include <cmath>
#include <cstdlib>

namespace janus {

namespace {

constexpr int kFeatures = 4;

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string trim_spaces(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// One CSV record: its fields and the line it starts on (1-based).
struct Record {
  std::vector<std::string> fields;
  size_t line = 0;
  bool blank() const { return fields.size() == 1 && fields[0].empty(); }
};

// Reads the records of a whole file (RFC 4180, see the file comment).
class CsvRecords {
 public:
  CsvRecords(std::string text, std::string path) : s_(std::move(text)), path_(std::move(path)) {
    if (s_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;  // UTF-8 byte-order mark
  }

  // The next record; false at the end of the file.
  bool next(Record& r) {
    if (pos_ >= s_.size()) return false;
    r.fields.clear();
    r.line = line_;
    std::string field;
    while (true) {
      field.clear();
      size_t p = pos_;
      while (p < s_.size() && is_space(s_[p])) ++p;
      if (p < s_.size() && s_[p] == '"') {
        pos_ = p + 1;
        read_quoted(field, r.line);
        // Only spaces may follow the closing quote before the delimiter.
        while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
        JANUS_CHECK(pos_ >= s_.size() || s_[pos_] == ',' || s_[pos_] == '\n' || s_[pos_] == '\r', "iris csv: ",
                    path_, " line ", line_, ": field ", r.fields.size() + 1,
                    " has text after its closing quote (a quote inside a field is written as \"\")");
      } else {
        while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '\n' && s_[pos_] != '\r') {
          JANUS_CHECK(s_[pos_] != '"', "iris csv: ", path_, " line ", line_, ": field ", r.fields.size() + 1,
                      " holds a quote but is not quoted (RFC 4180: quote the whole field and double the quote)");
          field.push_back(s_[pos_++]);
        }
        field = trim_spaces(field);
      }
      r.fields.push_back(field);
      if (pos_ >= s_.size()) return true;
      const char c = s_[pos_++];
      if (c == ',') continue;
      if (c == '\r' && pos_ < s_.size() && s_[pos_] == '\n') ++pos_;  // CRLF
      ++line_;
      return true;
    }
  }

 private:
  // A quoted field from just after its opening quote to just after its closing one.
  void read_quoted(std::string& field, size_t record_line) {
    while (true) {
      JANUS_CHECK(pos_ < s_.size(), "iris csv: ", path_, " line ", record_line,
                  ": a quoted field is never closed (the file ends inside it)");
      const char c = s_[pos_++];
      if (c == '"') {
        if (pos_ < s_.size() && s_[pos_] == '"') {
          field.push_back('"');
          ++pos_;
          continue;
        }
        return;
      }
      if (c == '\n') ++line_;
      field.push_back(c);
    }
  }

  std::string s_, path_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

// A feature as float32, or an error naming where it came from.
float parse_feature(const std::string& s, const std::string& where) {
  JANUS_CHECK(!s.empty(), where, " is empty");
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  JANUS_CHECK(end == s.c_str() + s.size() && std::isfinite(v), where, " is not a finite number: '", s, "'");
  JANUS_CHECK(std::fabs(v) <= static_cast<double>(FLT_MAX), where, " is out of float32 range (|value| <= ", FLT_MAX,
              "): '", s, "'");
  return static_cast<float>(v);
}

}  // namespace

Dataset load_iris_csv(const std::string& path) {
  const std::vector<uint8_t> bytes = data_detail::read_whole_file(path, "iris csv");
  CsvRecords records(std::string(bytes.begin(), bytes.end()), path);

  Dataset d;
  d.sample_shape = Shape{kFeatures};
  d.source = path;

  // Header: the first non-blank record.
  Record r;
  std::vector<std::string> header;
  while (records.next(r))
    if (!r.blank()) {
      header = r.fields;
      break;
    }
  JANUS_CHECK(!header.empty(), "iris csv: ", path, ": file has no header row");
  JANUS_CHECK(header.size() == kFeatures + 1, "iris csv: ", path, " line ", r.line, ": header has ", header.size(),
              " fields, expected ", kFeatures + 1, " (4 features and the species)");
  auto field_name = [&](size_t i) {
    return detail::concat("field ", i + 1, " (", header[i].empty() ? std::string("unnamed") : header[i], ")");
  };

  while (records.next(r)) {
    if (r.blank()) continue;
    const std::vector<std::string>& f = r.fields;
    const std::string at = detail::concat("iris csv: ", path, " line ", r.line, ": ");
    JANUS_CHECK(f.size() >= kFeatures + 1, at, field_name(f.size()), " is missing (", f.size(), " fields, expected ",
                kFeatures + 1, ")");
    JANUS_CHECK(f.size() == kFeatures + 1, at, f.size(), " fields, expected ", kFeatures + 1);
    for (size_t j = 0; j < kFeatures; ++j) d.x.push_back(parse_feature(f[j], at + field_name(j)));
    const std::string& species = f[kFeatures];
    JANUS_CHECK(!species.empty(), at, field_name(kFeatures), " (species name) is empty");
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
