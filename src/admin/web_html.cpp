// The frame of every page of the web pages: the one inline style sheet,
// the security headers (R26: a CSP that allows exactly that style sheet,
// no framing, no referrer), the page around a <main>, the error pages and
// the controls the forms are made of.  No JavaScript, no third-party
// asset.

#include <string>
#include <string_view>
#include <utility>

#include "codec.hpp"
#include "crypto.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {
namespace {

// The one style sheet, inline: the CSP allows exactly this text by hash.
constexpr std::string_view kCss =
    "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}"
    "header{background:#1f3a5f;color:#fff;padding:.6rem 1rem}"
    "header nav{display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap;"
    "max-width:62rem;margin:0 auto}"
    "header a{color:#fff}"
    "header .who{margin-left:auto}"
    "header form{display:inline;margin:0}"
    "header button{background:transparent;border-color:#fff;"
    "padding:.15rem .6rem}"
    "main{max-width:62rem;margin:1.5rem auto;padding:0 1rem}"
    "h1{font-size:1.6rem;margin:.2rem 0 1rem}"
    "h2{font-size:1.2rem;margin:1.5rem 0 .5rem}"
    "a{color:#0b5cad}"
    "table{border-collapse:collapse;width:100%;background:#fff;"
    "border:1px solid #d0d7de}"
    "th,td{text-align:left;padding:.5rem .7rem;border-bottom:1px solid "
    "#d0d7de;vertical-align:top}"
    "th{background:#eef1f4}"
    "caption{text-align:left;padding:0 0 .3rem}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;"
    "word-break:break-all}"
    ".secret{display:block;user-select:all;background:#fff;border:1px solid "
    "#8c959f;border-radius:4px;padding:.5rem .7rem;font-size:1rem}"
    ".field{margin:0 0 1.1rem}"
    "label,legend{display:block;font-weight:600}"
    "input[type=text],input[type=password],input[type=number],textarea,"
    "select{font:inherit;padding:.4rem;width:100%;max-width:38rem;"
    "box-sizing:border-box;border:1px solid #8c959f;border-radius:4px;"
    "background:#fff}"
    "fieldset{border:1px solid #d0d7de;border-radius:4px;margin:0 0 1.1rem;"
    "max-width:38rem;background:#fff}"
    "fieldset label{font-weight:normal}"
    ".help{color:#57606a;font-size:.9rem;margin:.2rem 0 0}"
    ".error{color:#b42318;font-weight:600;margin:.2rem 0 0}"
    ".errors{border:2px solid #b42318;background:#fff5f5;padding:.5rem 1rem;"
    "margin:0 0 1rem}"
    ".notice{border:2px solid #9a6700;background:#fff8c5;padding:.6rem 1rem;"
    "margin:0 0 1rem}"
    ".flash{border:1px solid #1a7f37;background:#dafbe1;padding:.5rem 1rem;"
    "margin:0 0 1rem}"
    "button{font:inherit;padding:.45rem 1.1rem;border-radius:4px;"
    "border:1px solid #1f3a5f;background:#1f3a5f;color:#fff;cursor:pointer}"
    "button.danger{background:#b42318;border-color:#b42318}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1.2rem;"
    "background:#fff;padding:1rem;border:1px solid #d0d7de;margin:0 0 1rem}"
    "dt{font-weight:600}dd{margin:0}"
    ".actions{display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap;"
    "margin:1rem 0}"
    ".actions form{margin:0}";

std::string b64_std(const Digest& d) {
  std::string s = base64url_encode(d.data(), d.size());
  for (char& ch : s) {
    if (ch == '-') ch = '+';
    if (ch == '_') ch = '/';
  }
  while (s.size() % 4) s.push_back('=');
  return s;
}

const std::string& csp() {
  static const std::string* v =
      new std::string("default-src 'none'; style-src 'sha256-" + b64_std(sha256(kCss)) +
                      "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  return *v;
}

}  // namespace

HttpResponse bare(int status) {
  HttpResponse r;
  r.status = status;
  r.headers = {
      {"Content-Security-Policy", csp()},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Content-Type-Options", "nosniff"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cache-Control", "no-store"},
  };
  return r;
}

HttpResponse see_other(std::string location) {
  HttpResponse r = bare(303);
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

HttpResponse page(int status, std::string_view title, std::string_view body, const Auth* auth) {
  std::string h;
  h.reserve(body.size() + kCss.size() + 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, "
       "initial-scale=1\">\n<title>";
  h += html_escape(title);
  h += " | OAuth 2 applications</title>\n<style>";
  h += kCss;
  h += "</style>\n</head>\n<body>\n<header>\n<nav aria-label=\"Main\">\n";
  if (auth) {
    h += "<a href=\"/o/applications/\">Applications</a>\n"
         "<a href=\"/o/applications/register/\">Register a new "
         "application</a>\n<span class=\"who\">Logged in as <strong>";
    h += html_escape(auth->user.username);
    h += "</strong></span>\n<form method=\"post\" "
         "action=\"/o/applications/logout/\"><input type=\"hidden\" "
         "name=\"csrf\" value=\"";
    h += html_escape(auth->session.csrf);
    h += "\"><button type=\"submit\">Log out</button></form>\n";
  } else {
    h += "<span>OAuth 2 applications</span>\n";
  }
  h += "</nav>\n</header>\n<main>\n";
  if (auth) {
    std::string flash = take_flash(*auth);
    if (!flash.empty()) {
      h += "<p class=\"flash\" role=\"status\">" + html_escape(flash) + "</p>\n";
    }
  }
  h += "<h1>";
  h += html_escape(title);
  h += "</h1>\n";
  h += body;
  h += "</main>\n</body>\n</html>\n";
  HttpResponse r = bare(status);
  r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  r.body = std::move(h);
  return r;
}

HttpResponse message(int status, std::string_view title, std::string_view text, const Auth* auth) {
  std::string b = "<p>" + html_escape(text) + "</p>\n";
  if (auth) {
    b += "<p><a href=\"/o/applications/\">Back to the applications</a></p>\n";
  }
  return page(status, title, b, auth);
}

HttpResponse not_found(const Auth* auth) {
  return message(404, "Not found", "There is no such page or no such application.", auth);
}

HttpResponse method_not_allowed(std::string_view allow) {
  HttpResponse r =
      message(405, "Method not allowed", "This page does not accept that method.", nullptr);
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

HttpResponse forbidden_csrf(const Auth* auth) {
  return message(403, "Forbidden",
                 "The form has expired or did not come from this site "
                 "(CSRF check failed).  Go back, reload the page and try "
                 "again; cookies must be enabled.",
                 auth);
}

std::string hidden(std::string_view name, std::string_view value) {
  return "<input type=\"hidden\" name=\"" + html_escape(name) + "\" value=\"" + html_escape(value) +
         "\">\n";
}

std::string error_summary(const Errors& e) {
  if (!e.any()) return {};
  std::string h =
      "<div class=\"errors\" role=\"alert\">\n<p>Please correct the "
      "errors below.</p>\n<ul>\n";
  for (const auto& x : e.list) {
    h +=
        "<li><a href=\"#id_" + html_escape(x.first) + "\">" + html_escape(x.second) + "</a></li>\n";
  }
  return h + "</ul>\n</div>\n";
}

std::string field_errors(const Errors& e, std::string_view field, std::string* aria) {
  auto msgs = e.of(field);
  if (msgs.empty()) return {};
  std::string id = "id_" + std::string(field) + "_error";
  *aria += " aria-invalid=\"true\" aria-describedby=\"" + html_escape(id) + "\"";
  std::string h = "<p class=\"error\" id=\"" + html_escape(id) + "\">";
  for (size_t i = 0; i < msgs.size(); i++) {
    if (i) h += "<br>";
    h += html_escape(msgs[i]);
  }
  return h + "</p>\n";
}

std::string field_html(const Errors& e, std::string_view name, std::string_view label_html,
                       std::string_view help_html, std::string_view start_tag,
                       std::string_view rest) {
  std::string aria;
  std::string errs = field_errors(e, name, &aria);
  std::string h = "<div class=\"field\"><label for=\"id_" + html_escape(name) + "\">" +
                  std::string(label_html) + "</label>\n";
  if (!help_html.empty()) {
    h += "<p class=\"help\" id=\"id_" + html_escape(name) + "_help\">" + std::string(help_html) +
         "</p>\n";
    // the errors, when there are any, say more than the help
    if (aria.empty()) {
      aria = " aria-describedby=\"id_" + html_escape(name) + "_help\"";
    }
  }
  return h + std::string(start_tag) + aria + ">" + std::string(rest) + "\n" + errs + "</div>\n";
}

std::string text_field(const Errors& e, std::string_view name, std::string_view label,
                       std::string_view value, std::string_view help, std::string_view extra) {
  return field_html(e, name, html_escape(label), html_escape(help),
                    "<input type=\"text\" id=\"id_" + html_escape(name) + "\" name=\"" +
                        html_escape(name) + "\" value=\"" + html_escape(value) + "\"" +
                        std::string(extra),
                    "");
}

}  // namespace oauth2::admin::web
