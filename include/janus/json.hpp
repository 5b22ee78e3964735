// Json: a JSON value, the type in which configs cross the public API
// (Layer::config, make_layer, register_layer_type's factories,
// NeuralNetwork::from_config / config, make_optimizer, make_scheduler, the
// run configs of trainer.hpp).
//
// Why a type of Janus's own: the headers of <janus/janus.hpp> include no JSON
// library, so a program that builds and trains a model in C++ does not parse
// nlohmann/json in every translation unit, and the API does not tie its users
// to one JSON library's version. Janus reads and writes JSON with
// nlohmann/json inside the library; a program that wants nlohmann::json at
// the API includes <janus/nlohmann_json.hpp> (opt-in), after which the two
// convert into each other implicitly (nlohmann_json.hpp says how).
//
// The value model is JSON's with nlohmann/json's meaning: null, boolean,
// number (signed integer, unsigned integer or floating point), string,
// array, object (keys kept sorted). dump() is nlohmann/json's dump, byte for
// byte, so configs and checkpoints are written exactly as before Json
// existed. Braced lists build values as in nlohmann/json: a list whose
// elements are all [string, value] pairs is an object, any other list an
// array (Json::array(...) / Json::object(...) force one or the other):
//
//   janus::Json cfg = {{"type", "residual_block"}, {"name", "res1"}, {"channels", 16}};
//   cfg.at("channels").get<int64_t>()     // 16
//   cfg.contains("stride")                // false
//   cfg.keys()                            // {"channels", "name", "type"}
//   cfg.dump()                            // {"channels":16,"name":"res1","type":"residual_block"}
//   janus::Json::parse("[1, 2.5, null]").at(1).get<double>()   // 2.5
//
// A Json is a value (copies are deep; at() returns a copy of the element).
// Errors: janus::Error, saying what was expected and what was found, for a
// missing key, an index out of range, a value read as the wrong type or out
// of the requested type's range (get<int> of 2.5 or of 1e10 is an error, not
// a truncation), text that is not JSON (the message gives the position).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace janus {

// Conversion of another JSON library's values to Json, for the interop
// headers (<janus/nlohmann_json.hpp> specialises it for nlohmann::json):
// static Json to_janus(const T&) and static Json to_janus(T&&).
template <class T>
struct JsonInterop;

namespace detail {
struct JsonValue;  // the library's representation (nlohmann::json), see nlohmann_json.hpp
struct JsonAccess;

// Whether JsonInterop<T> is specialised (complete) where this is asked.
template <class T, class = void>
struct has_json_interop : std::false_type {};
template <class T>
struct has_json_interop<T, std::void_t<decltype(sizeof(JsonInterop<T>))>> : std::true_type {};
}  // namespace detail

class Json {
 public:
  enum class Type { Null, Boolean, Integer, Unsigned, Float, String, Array, Object };

  // null
  Json() noexcept;
  Json(std::nullptr_t) noexcept;  // NOLINT: implicit, as a JSON literal
  // bool, a signed integer (Integer), an unsigned integer (Unsigned), or a
  // floating-point number (Float).
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Json(T value) : Json() {  // NOLINT: implicit
    if constexpr (std::is_same_v<T, bool>) assign_bool(value);
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) assign_int(static_cast<int64_t>(value));
    else if constexpr (std::is_integral_v<T>) assign_uint(static_cast<uint64_t>(value));
    else assign_float(static_cast<double>(value));
  }
  Json(const char* text);          // NOLINT: implicit; a string
  Json(const std::string& text);   // NOLINT: implicit; a string
  // An object when every element is a [string, value] pair, else an array.
  Json(std::initializer_list<Json> elements);
  // An array of the elements (numbers, strings, Json values, ...).
  template <class T>
  Json(const std::vector<T>& elements) : Json(array()) {  // NOLINT: implicit
    for (const T& e : elements) push_back(Json(e));
  }
  // A value of another JSON library, where an interop header allows it
  // (<janus/nlohmann_json.hpp>: nlohmann::json).
  template <class T, std::enable_if_t<detail::has_json_interop<std::decay_t<T>>::value, int> = 0>
  Json(T&& value) : Json(JsonInterop<std::decay_t<T>>::to_janus(std::forward<T>(value))) {}  // NOLINT: implicit

  Json(const Json& other);
  Json(Json&& other) noexcept;
  // (Assignable as lvalues only, so that `cfg.at("x") = 1`, which would
  // change a copy, does not compile.)
  Json& operator=(const Json& other) &;
  Json& operator=(Json&& other) & noexcept;
  ~Json();

  static Json array(std::initializer_list<Json> elements = {});
  // Throws janus::Error when an element is not a [string, value] pair.
  static Json object(std::initializer_list<Json> elements = {});
  // Parses JSON text (RFC 8259). Throws janus::Error with the position of
  // the first error.
  static Json parse(const std::string& text);

  Type type() const;
  bool is_null() const { return type() == Type::Null; }
  bool is_boolean() const { return type() == Type::Boolean; }
  bool is_number() const { return is_number_integer() || type() == Type::Float; }
  bool is_number_integer() const { return type() == Type::Integer || type() == Type::Unsigned; }
  bool is_number_float() const { return type() == Type::Float; }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }

  // Elements of an array or object; 0 for null; 1 for any other value.
  size_t size() const;
  bool empty() const { return size() == 0; }
  // Whether this is an object with this key.
  bool contains(const std::string& key) const;
  // The value under `key` of an object (a copy). Throws unless this is an
  // object with that key.
  Json at(const std::string& key) const;
  // Element i of an array (a copy). Throws unless this is an array with i < size().
  Json at(size_t index) const;
  Json operator[](const std::string& key) const { return at(key); }
  Json operator[](size_t index) const { return at(index); }
  // An object's keys, in order (sorted).
  std::vector<std::string> keys() const;

  // The value as T: bool (from a boolean), an integer type (from an integer
  // within T's range), float or double (from any number), std::string (from
  // a string). Anything else throws janus::Error naming T and the value.
  template <class T>
  T get() const;

  // Sets the value under `key` (this becomes an object if it was null;
  // throws if it is another non-object). Returns *this.
  Json& set(const std::string& key, Json value) &;
  // Appends an element (this becomes an array if it was null; throws if it
  // is another non-array). Returns *this.
  Json& push_back(Json value) &;
  // Removes `key` from an object; returns whether it was there.
  bool erase(const std::string& key);

  // JSON text: compact for indent < 0, else pretty-printed with `indent`
  // spaces per level (nlohmann/json's dump).
  std::string dump(int indent = -1) const;

  // Equality of JSON values (numbers compare by value: 1 == 1u == 1.0).
  friend bool operator==(const Json& a, const Json& b);
  friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }
  // Writes dump().
  friend std::ostream& operator<<(std::ostream& out, const Json& value);

 private:
  friend struct detail::JsonAccess;
  explicit Json(std::unique_ptr<detail::JsonValue> value) noexcept;
  void assign_bool(bool v);
  void assign_int(int64_t v);
  void assign_uint(uint64_t v);
  void assign_float(double v);
  bool get_bool() const;
  int64_t get_int(int64_t lo, int64_t hi) const;  // an integer in [lo, hi]
  uint64_t get_uint(uint64_t hi) const;           // an integer in [0, hi]
  double get_float() const;
  std::string get_string() const;
  // null when default-constructed or moved from (no allocation for null).
  std::unique_ptr<detail::JsonValue> value_;
};

template <class T>
T Json::get() const {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    return get_bool();
  } else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
    return static_cast<U>(get_int(std::numeric_limits<U>::min(), std::numeric_limits<U>::max()));
  } else if constexpr (std::is_integral_v<U>) {
    return static_cast<U>(get_uint(std::numeric_limits<U>::max()));
  } else if constexpr (std::is_floating_point_v<U>) {
    return static_cast<U>(get_float());
  } else {
    static_assert(std::is_same_v<U, std::string>, "Json::get<T>: T must be bool, an integer type, float, double "
                                                  "or std::string");
    return get_string();
  }
}

}  // namespace janus
