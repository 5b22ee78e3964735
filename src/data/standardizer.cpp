// Per-channel (last axis) standardisation fitted on the training split.
#include <janus/data.hpp>

#include <cmath>

namespace janus {

namespace {
constexpr double kMinStd = 1e-6;
}

Standardizer::Standardizer(std::vector<float> mean, std::vector<float> stddev) {
  *this = from_state(mean, stddev);
}

Standardizer Standardizer::from_state(const std::vector<float>& mean, const std::vector<float>& stddev) {
  JANUS_CHECK(!mean.empty() && mean.size() == stddev.size(), "Standardizer: state has ", mean.size(),
              " means and ", stddev.size(), " standard deviations; expected the same non-zero count");
  Standardizer s;
  s.mean_ = mean;
  s.std_ = stddev;
  s.inv_std_.resize(stddev.size());
  for (size_t c = 0; c < stddev.size(); ++c) {
    JANUS_CHECK(std::isfinite(stddev[c]) && stddev[c] > 0 && std::isfinite(mean[c]), "Standardizer: channel ",
                c, " has mean ", mean[c], " and std ", stddev[c], "; std must be finite and positive");
    s.inv_std_[c] = 1.0f / stddev[c];
  }
  return s;
}

void Standardizer::fit(const Dataset& train) {
  JANUS_CHECK(train.size() > 0, "Standardizer: cannot fit on an empty dataset (", train.source, ")");
  JANUS_CHECK(train.x.size() == train.size() * train.sample_numel(), "Standardizer: dataset ", train.source,
              " has ", train.x.size(), " values for ", train.size(), " samples of ", train.sample_shape.str());
  fit(train.x.data(), train.x.size(), static_cast<size_t>(train.sample_shape.last()));
}

void Standardizer::fit(const float* x, size_t count, size_t channels) {
  JANUS_CHECK(channels > 0 && count > 0 && count % channels == 0, "Standardizer: ", count,
              " values do not split into rows of ", channels, " channels");
  const size_t rows = count / channels;
  // Two passes in double: exact enough for 10^8 pixel values.
  std::vector<double> sum(channels, 0.0), sq(channels, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    for (size_t c = 0; c < channels; ++c) sum[c] += row[c];
  }
  std::vector<double> mean(channels);
  for (size_t c = 0; c < channels; ++c) mean[c] = sum[c] / static_cast<double>(rows);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    for (size_t c = 0; c < channels; ++c) {
      double dv = row[c] - mean[c];
      sq[c] += dv * dv;
    }
  }
  std::vector<float> m(channels), s(channels);
  for (size_t c = 0; c < channels; ++c) {
    double sd = std::sqrt(sq[c] / static_cast<double>(rows));
    m[c] = static_cast<float>(mean[c]);
    s[c] = static_cast<float>(sd < kMinStd ? 1.0 : sd);
  }
  *this = from_state(m, s);
}

void Standardizer::apply(Dataset& data) const {
  JANUS_CHECK(fitted(), "Standardizer: apply() before fit()");
  JANUS_CHECK(static_cast<size_t>(data.sample_shape.last()) == channels(), "Standardizer: fitted on ",
              channels(), " channels but ", data.source, " has samples of ", data.sample_shape.str());
  apply(data.x.data(), data.x.size());
}

void Standardizer::apply(float* x, size_t count) const {
  JANUS_CHECK(fitted(), "Standardizer: apply() before fit()");
  const size_t ch = channels();
  JANUS_CHECK(count % ch == 0, "Standardizer: ", count, " values do not split into rows of ", ch, " channels");
  const size_t rows = count / ch;
  const float* m = mean_.data();
  const float* is = inv_std_.data();
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * ch;
    for (size_t c = 0; c < ch; ++c) row[c] = (row[c] - m[c]) * is[c];
  }
}

void Standardizer::invert(float* x, size_t count) const {
  JANUS_CHECK(fitted(), "Standardizer: invert() before fit()");
  const size_t ch = channels();
  JANUS_CHECK(count % ch == 0, "Standardizer: ", count, " values do not split into rows of ", ch, " channels");
  for (size_t i = 0; i < count; ++i) x[i] = x[i] * std_[i % ch] + mean_[i % ch];
}

}  // namespace janus
