// Json (include/janus/json.hpp): a nlohmann::json behind a pointer, so that
// the public headers need no JSON library. Every operation is nlohmann/json's
// (the same text, the same equality), with errors as janus::Error.
#include "janus/json.hpp"

#include <ostream>

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {

namespace {

using nlohmann::json;

// "3.5", "\"abc\"", "[1,2]": a value as it appears in messages (long ones cut).
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Json::Type type_of(const json& v) {
  switch (v.type()) {
    case json::value_t::boolean: return Json::Type::Boolean;
    case json::value_t::number_integer: return Json::Type::Integer;
    case json::value_t::number_unsigned: return Json::Type::Unsigned;
    case json::value_t::number_float: return Json::Type::Float;
    case json::value_t::string: return Json::Type::String;
    case json::value_t::array: return Json::Type::Array;
    case json::value_t::object: return Json::Type::Object;
    default: return Json::Type::Null;  // null, discarded, binary (never produced by Janus)
  }
}

// nlohmann/json's rule for a braced list: an object when every element is a
// two-element array whose first element is a string.
bool is_list_of_pairs(std::initializer_list<Json> elements) {
  for (const Json& e : elements) {
    const json& v = nlohmann_json(e);
    if (!v.is_array() || v.size() != 2 || !v[0].is_string()) return false;
  }
  return true;
}

json object_of_pairs(std::initializer_list<Json> elements) {
  json o = json::object();
  for (const Json& e : elements) {
    const json& pair = nlohmann_json(e);
    o[pair[0].get<std::string>()] = pair[1];
  }
  return o;
}

json array_of(std::initializer_list<Json> elements) {
  json a = json::array();
  for (const Json& e : elements) a.push_back(nlohmann_json(e));
  return a;
}

}  // namespace

Json::Json() noexcept = default;
Json::Json(std::nullptr_t) noexcept {}
Json::Json(std::unique_ptr<detail::JsonValue> value) noexcept : value_(std::move(value)) {}
Json::Json(const char* text) : Json(detail::JsonAccess::make(json(text))) {}
Json::Json(const std::string& text) : Json(detail::JsonAccess::make(json(text))) {}
Json::Json(std::initializer_list<Json> elements)
    : Json(detail::JsonAccess::make(is_list_of_pairs(elements) && elements.size() > 0 ? object_of_pairs(elements)
                                                                                       : array_of(elements))) {}
Json::Json(const Json& other) : Json(detail::JsonAccess::make(nlohmann_json(other))) {}
Json::Json(Json&& other) noexcept = default;
Json& Json::operator=(const Json& other) & {
  if (this != &other) nlohmann_json(*this) = nlohmann_json(other);
  return *this;
}
Json& Json::operator=(Json&& other) & noexcept = default;
Json::~Json() = default;

void Json::assign_bool(bool v) { nlohmann_json(*this) = v; }
void Json::assign_int(int64_t v) { nlohmann_json(*this) = v; }
void Json::assign_uint(uint64_t v) { nlohmann_json(*this) = v; }
void Json::assign_float(double v) { nlohmann_json(*this) = v; }

Json Json::array(std::initializer_list<Json> elements) { return detail::JsonAccess::make(array_of(elements)); }

Json Json::object(std::initializer_list<Json> elements) {
  JANUS_CHECK(is_list_of_pairs(elements), "Json::object: every element must be a [key, value] pair, got ",
              shown(array_of(elements)));
  return detail::JsonAccess::make(object_of_pairs(elements));
}

Json Json::parse(const std::string& text) {
  try {
    return detail::JsonAccess::make(json::parse(text));
  } catch (const json::parse_error& e) {
    throw Error(std::string("invalid JSON: ") + e.what());
  }
}

Json::Type Json::type() const { return type_of(nlohmann_json(*this)); }

size_t Json::size() const { return nlohmann_json(*this).size(); }

bool Json::contains(const std::string& key) const {
  const json& v = nlohmann_json(*this);
  return v.is_object() && v.contains(key);
}

Json Json::at(const std::string& key) const {
  const json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_object(), "JSON: key '", key, "' looked up in ", shown(v), ", which is not an object");
  auto it = v.find(key);
  JANUS_CHECK(it != v.end(), "JSON: no key '", key, "' in ", shown(v));
  return detail::JsonAccess::make(*it);
}

Json Json::at(size_t index) const {
  const json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_array(), "JSON: element ", index, " looked up in ", shown(v), ", which is not an array");
  JANUS_CHECK(index < v.size(), "JSON: element ", index, " of an array of ", v.size());
  return detail::JsonAccess::make(v[index]);
}

std::vector<std::string> Json::keys() const {
  std::vector<std::string> keys;
  const json& v = nlohmann_json(*this);
  if (v.is_object())
    for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
  return keys;
}

bool Json::get_bool() const {
  const json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_boolean(), "JSON: expected true or false, got ", shown(v));
  return v.get<bool>();
}

int64_t Json::get_int(int64_t lo, int64_t hi) const {
  const json& v = nlohmann_json(*this);
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                               : v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  JANUS_CHECK(in_range, "JSON: expected an integer in [", lo, ", ", hi, "], got ", shown(v));
  return v.get<int64_t>();
}

uint64_t Json::get_uint(uint64_t hi) const {
  const json& v = nlohmann_json(*this);
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= hi
                                               : v.is_number_integer() && v.get<int64_t>() >= 0 &&
                                                     static_cast<uint64_t>(v.get<int64_t>()) <= hi;
  JANUS_CHECK(in_range, "JSON: expected an integer in [0, ", hi, "], got ", shown(v));
  return v.get<uint64_t>();
}

double Json::get_float() const {
  const json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_number(), "JSON: expected a number, got ", shown(v));
  return v.get<double>();
}

std::string Json::get_string() const {
  const json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_string(), "JSON: expected a string, got ", shown(v));
  return v.get<std::string>();
}

Json& Json::set(const std::string& key, Json value) & {
  json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_null() || v.is_object(), "JSON: cannot set key '", key, "' of ", shown(v), ", not an object");
  v[key] = std::move(nlohmann_json(value));
  return *this;
}

Json& Json::push_back(Json value) & {
  json& v = nlohmann_json(*this);
  JANUS_CHECK(v.is_null() || v.is_array(), "JSON: cannot append to ", shown(v), ", not an array");
  v.push_back(std::move(nlohmann_json(value)));
  return *this;
}

bool Json::erase(const std::string& key) {
  json& v = nlohmann_json(*this);
  return v.is_object() && v.erase(key) > 0;
}

std::string Json::dump(int indent) const { return nlohmann_json(*this).dump(indent); }

bool operator==(const Json& a, const Json& b) { return nlohmann_json(a) == nlohmann_json(b); }

std::ostream& operator<<(std::ostream& out, const Json& value) { return out << nlohmann_json(value).dump(); }

}  // namespace janus
