// The JSON API's shared parts (api.hpp): strict bodies, DRF's error shapes
// and pagination.

#include "api.hpp"

#include <new>

#include "cli.hpp"
#include "codec.hpp"
#include "model.hpp"
#include "unicode.hpp"

namespace oauth2::admin {
namespace {

// s cut to printable ASCII, for a message that quotes the input
std::string shown(std::string_view s, size_t max = 80) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    unsigned char c = static_cast<unsigned char>(ch);
    out.push_back(c >= 0x20 && c < 0x7F ? ch : '?');
  }
  return out;
}

bool is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

const char* type_name(const json_t* j) {
  switch (json_typeof(j)) {
    case JSON_OBJECT: return "dict";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "str";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    default: return "NoneType";
  }
}

// The member key of obj into *out for get_string() and get_bool(): kBad,
// with DRF's message, when it is null or not of the type type_ok wants.
template <typename TypeOk>
Got get_member(json_t* obj, const char* key, TypeOk type_ok, const char* wrong_type,
               FieldErrors& errors, json_t** out) {
  json_t* v = json_object_get(obj, key);
  if (!v) return Got::kAbsent;
  if (json_is_null(v)) {
    errors.add(key, "This field may not be null.");
    return Got::kBad;
  }
  if (!type_ok(v)) {
    errors.add(key, wrong_type);
    return Got::kBad;
  }
  *out = v;
  return Got::kOk;
}

HttpResponse parse_error(std::string_view why) {
  return HttpResponse::error(400, "JSON parse error - " + std::string(why));
}

bool host_ok(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  size_t i = 0;
  if (h[0] == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char ch : h.substr(1, close - 1)) {
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
            ch == ':' || ch == '.')) {
        return false;
      }
    }
    i = close + 1;
  } else {
    while (i < h.size() && h[i] != ':') {
      char ch = h[i];
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            ch == '.' || ch == '-')) {
        return false;
      }
      i++;
    }
    if (i == 0) return false;
  }
  if (i == h.size()) return true;
  if (h[i] != ':' || i + 1 == h.size() || h.size() - i - 1 > 5) return false;
  for (char ch : h.substr(i + 1)) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}

}  // namespace

HttpResponse not_found() {
  return HttpResponse::error(404, "Not found.");
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse invalid_page() {
  return HttpResponse::error(404, "Invalid page.");
}

HttpResponse options_response(const ApiView& view) {
  // the API renders and parses JSON only (parse_json_object: 415 else)
  Json obj(checked(json_object()));
  set_member(obj.get(), "name", checked(json_string(view.name)));
  set_member(obj.get(), "description", checked(json_string(view.description)));
  set_member(obj.get(), "renders", strings_json({"application/json"}));
  set_member(obj.get(), "parses", strings_json({"application/json"}));
  HttpResponse r = HttpResponse::json(200, obj.get());
  r.set("Allow", view.allow);
  return r;
}

HttpResponse method_not_allowed(const HttpRequest& req, const ApiView& view) {
  HttpResponse r =
      HttpResponse::error(405, "Method \"" + shown(req.method, 20) + "\" not allowed.");
  r.set("Allow", view.allow);
  return r;
}

Json parse_json_object(const HttpRequest& req, HttpResponse* error) {
  if (req.header_count("content-type") > 1) {
    *error = HttpResponse::error(400, "More than one Content-Type header.");
    return nullptr;
  }
  std::string_view media = media_type(req.header("content-type").value_or(""));
  if (!iequals(media, "application/json")) {
    *error =
        HttpResponse::error(415, "Unsupported media type \"" + shown(media) + "\" in request.");
    return nullptr;
  }
  if (trimmed(req.body).empty()) {
    *error = parse_error("the body is empty");
    return nullptr;
  }
  if (json_too_deep(req.body, kMaxJsonDepth)) {
    *error = parse_error("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return nullptr;
  }
  json_error_t err;
  Json j(json_loadb(req.body.data(), req.body.size(), JSON_REJECT_DUPLICATES, &err));
  if (!j) {
    // never the text jansson was reading: the body may be a password
    *error = parse_error(shown(json_error_text(err), 120) + " at line " + std::to_string(err.line) +
                         " column " + std::to_string(err.column));
    return nullptr;
  }
  if (!json_is_object(j.get())) {
    *error = parse_error(std::string("expected a JSON object, got ") + type_name(j.get()));
    return nullptr;
  }
  return j;
}

void FieldErrors::add(std::string_view field, std::string message) {
  for (auto& e : errors_) {
    if (e.first == field) {
      e.second.push_back(std::move(message));
      return;
    }
  }
  errors_.emplace_back(std::string(field), std::vector<std::string>{std::move(message)});
}

bool FieldErrors::has(std::string_view field) const {
  for (const auto& e : errors_) {
    if (e.first == field) return true;
  }
  return false;
}

HttpResponse FieldErrors::response() const {
  Json obj(checked(json_object()));
  for (const auto& e : errors_) {
    set_member(obj.get(), e.first.c_str(), strings_json(e.second));
  }
  return HttpResponse::json(400, obj.get());
}

Got get_string(json_t* obj, const char* key, FieldErrors& errors, std::string* out, bool trim) {
  json_t* v = nullptr;
  Got got = get_member(
      obj, key, [](const json_t* j) { return json_is_string(j); }, "Not a valid string.", errors,
      &v);
  if (got != Got::kOk) return got;
  std::string_view s(json_string_value(v), json_string_length(v));
  *out = std::string(trim ? py_strip(s) : s);  // DRF's CharField: str.strip()
  return Got::kOk;
}

Got get_bool(json_t* obj, const char* key, FieldErrors& errors, bool* out) {
  json_t* v = nullptr;
  Got got = get_member(
      obj, key, [](const json_t* j) { return json_is_boolean(j); }, "Must be a valid boolean.",
      errors, &v);
  if (got == Got::kOk) *out = json_is_true(v);
  return got;
}

bool check_max_chars(std::string_view s, size_t max, const char* key, FieldErrors& errors) {
  if (utf8_chars(s) <= max) return true;
  errors.add(key, "Ensure this field has no more than " + std::to_string(max) + " characters.");
  return false;
}

// ------------------------------------------------------------------ Pager

Pager::Pager(const HttpRequest& req, size_t page_size)
    : req_(req), size_(page_size ? page_size : 1) {
  // the last ?page= wins, as in Django's QueryDict
  std::optional<std::string> value;
  std::string_view q = req.query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    size_t eq = pair.find('=');
    auto name = form_decode(pair.substr(0, eq));
    if (!name || *name != "page") continue;
    if (eq == std::string_view::npos) {
      value = std::string();
      continue;
    }
    auto v = form_decode(pair.substr(eq + 1));
    value = v ? *v : std::string("?");
  }
  // an empty one is page 1, as DRF's "query_params.get('page') or 1"
  if (!value || value->empty()) return;
  if (*value == "last") {
    last_ = true;
    return;
  }
  if (value->size() > 12) {
    valid_ = false;
    return;
  }
  size_t n = 0;
  for (char ch : *value) {
    if (ch < '0' || ch > '9') {
      valid_ = false;
      return;
    }
    n = n * 10 + static_cast<size_t>(ch - '0');
  }
  if (n < 1) valid_ = false;
  page_ = n;
}

bool Pager::window(size_t total, size_t* offset, size_t* limit) {
  total_ = total;
  size_t pages = total == 0 ? 1 : (total + size_ - 1) / size_;
  if (last_) page_ = pages;
  if (!valid_ || page_ > pages) return false;
  *offset = (page_ - 1) * size_;
  *limit = size_;
  return true;
}

HttpResponse Pager::response(json_t* results) const {
  Json res(results);
  size_t pages = total_ == 0 ? 1 : (total_ + size_ - 1) / size_;
  bool has_next = page_<pages, has_prev = page_> 1;
  std::string base;
  if (has_next || has_prev) {
    auto host = req_.header("host");
    if (!host || req_.header_count("host") > 1 || !host_ok(*host)) {
      return HttpResponse::error(400, "Invalid Host header.");
    }
    auto proto = req_.header("x-forwarded-proto");
    bool https = proto && iequals(trimmed(*proto), "https");
    base = std::string(https ? "https://" : "http://") + std::string(*host) + req_.path;
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "count", checked(json_integer(static_cast<json_int_t>(total_))));
  set_member(obj.get(), "next",
             has_next ? string_json(base + "?page=" + std::to_string(page_ + 1)) : json_null());
  set_member(obj.get(), "previous",
             !has_prev    ? json_null()
             : page_ == 2 ? string_json(base)
                          : string_json(base + "?page=" + std::to_string(page_ - 1)));
  set_member(obj.get(), "results", res.release());
  return HttpResponse::json(200, obj.get());
}

}  // namespace oauth2::admin
