// The pages of the web pages, each a <main> for page() (web_html.cpp):
// the login form, the list of applications, one application, its form,
// the secret shown once, the confirmation of a delete.

#include <ctime>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "model.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {
namespace {

const char* const kGrantLabels[] = {"Client credentials", "Authorization code",
                                    "Resource owner password-based", "Refresh token",
                                    "Device code (RFC 8628)"};
static_assert(std::size(kGrantLabels) == std::size(kGrants));

std::string grant_label(std::string_view g) {
  for (size_t i = 0; i < std::size(kGrants); i++) {
    if (g == kGrants[i]) return kGrantLabels[i];
  }
  return std::string(g);
}

std::string grants_text(const Client& c) {
  std::vector<std::string> labels;
  for (const auto& g : c.grant_types) labels.push_back(grant_label(g));
  return join(labels, ", ");
}

std::string utc_time(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[64];
  if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm) == 0) {
    return "unknown";
  }
  return buf;
}

// ------------------------------------------------------ application form

// Radio buttons when the application is created; it keeps its type after.
std::string client_type_html(const AppForm& v, const Errors& e, bool create) {
  if (!create) {
    return "<p><strong>Client type:</strong> " + html_escape(v.client_type) + "</p>\n";
  }
  std::string aria;
  std::string errs = field_errors(e, "client_type", &aria);
  std::string h = "<fieldset id=\"id_client_type\"" + aria + "><legend>Client type</legend>\n";
  for (const char* t : {"confidential", "public"}) {
    std::string id = std::string("id_client_type_") + t;
    h += "<label for=\"" + id + "\"><input type=\"radio\" id=\"" + id +
         "\" name=\"client_type\" value=\"" + t + "\"" + (v.client_type == t ? " checked" : "") +
         "> " +
         (t[0] == 'c' ? "Confidential: a server that keeps a secret"
                      : "Public: a browser or mobile app, no secret") +
         "</label>\n";
  }
  return h + errs + "</fieldset>\n";
}

std::string grants_html(const AppForm& v, const Errors& e) {
  std::string aria;
  std::string errs = field_errors(e, "grants", &aria);
  std::string h =
      "<fieldset id=\"id_grants\"" + aria + "><legend>Authorization grant types</legend>\n";
  for (size_t i = 0; i < std::size(kGrants); i++) {
    std::string n = std::string("grant_") + kGrants[i];
    h += "<label for=\"id_" + n + "\"><input type=\"checkbox\" id=\"id_" + n + "\" name=\"" + n +
         "\" value=\"1\"" + (v.has_grant(kGrants[i]) ? " checked" : "") + "> " + kGrantLabels[i] +
         "</label>\n";
  }
  return h + errs + "</fieldset>\n";
}

std::string redirect_uris_html(const AppForm& v, const Errors& e) {
  return field_html(e, "redirect_uris", "Redirect uris",
                    "Allowed URIs, separated by spaces or new lines. Needed "
                    "for the authorization code grant.",
                    "<textarea id=\"id_redirect_uris\" name=\"redirect_uris\" "
                    "rows=\"3\"",
                    html_escape(v.redirect_uris) + "</textarea>");
}

std::string ttl_html(const AppForm& v, const Errors& e) {
  return field_html(e, "access_token_ttl", "Access token lifetime (seconds)",
                    "Optional, 1 to 315360000. Empty: the server's default.",
                    "<input type=\"number\" id=\"id_access_token_ttl\" "
                    "name=\"access_token_ttl\" min=\"1\" max=\"315360000\" "
                    "value=\"" +
                        html_escape(v.ttl) + "\"",
                    "");
}

// The options of the client authentication <select>.
std::string auth_method_options(const AppForm& v) {
  const std::pair<const char*, const char*> opts[] = {
      {"", "Either: HTTP Basic or client_secret in the body"},
      {"client_secret_basic", "HTTP Basic only (client_secret_basic)"},
      {"client_secret_post", "In the body only (client_secret_post)"},
  };
  std::string h;
  for (const auto& o : opts) {
    h += std::string("<option value=\"") + o.first + "\"" +
         (v.auth_method == o.first ? " selected" : "") + ">" + o.second + "</option>\n";
  }
  return h;
}

std::string app_form_html(const AppForm& v, const Errors& e, bool create, std::string_view action,
                          std::string_view csrf) {
  std::string h = error_summary(e);
  h += "<form method=\"post\" action=\"" + html_escape(action) + "\" novalidate>\n";
  h += hidden("csrf", csrf);
  h += text_field(e, "name", "Name", v.name, "", " maxlength=\"255\" required");
  h += client_type_html(v, e, create);
  h += grants_html(v, e);
  h += redirect_uris_html(v, e);
  h += text_field(e, "scope", "Allowed scope", v.scope,
                  "Scopes the application may obtain, separated by "
                  "spaces. Empty: the server's default scope.",
                  "");
  h += ttl_html(v, e);
  if (v.client_type != "public" || create) {
    h += field_html(e, "auth_method", "Client authentication", "",
                    "<select id=\"id_auth_method\" name=\"auth_method\"",
                    "\n" + auth_method_options(v) + "</select>");
  }
  h += "<div class=\"actions\"><button type=\"submit\">Save</button>\n"
       "<a href=\"/o/applications/\">Cancel</a></div>\n</form>\n";
  return h;
}

}  // namespace

HttpResponse login_page(int status, const HttpRequest& req, std::string_view csrf, bool new_csrf,
                        std::string_view next, std::string_view username, std::string_view error) {
  std::string b;
  if (!error.empty()) {
    b += "<div class=\"errors\" role=\"alert\"><p>" + html_escape(error) + "</p></div>\n";
  }
  b += "<p>Log in with a staff account to manage the OAuth 2 "
       "applications.</p>\n"
       "<form method=\"post\" action=\"/o/applications/login/\">\n";
  b += hidden("csrf", csrf);
  if (!next.empty()) b += hidden("next", next);
  b += "<div class=\"field\"><label for=\"id_username\">Username</label>\n"
       "<input type=\"text\" id=\"id_username\" name=\"username\" "
       "autocomplete=\"username\" autocapitalize=\"none\" maxlength=\"150\" "
       "required autofocus value=\"" +
       html_escape(username) +
       "\"></div>\n"
       "<div class=\"field\"><label for=\"id_password\">Password</label>\n"
       "<input type=\"password\" id=\"id_password\" name=\"password\" "
       "autocomplete=\"current-password\" required></div>\n"
       "<button type=\"submit\">Log in</button>\n</form>\n";
  HttpResponse r = page(status, "Log in", b, nullptr);
  if (new_csrf) {
    r.headers.emplace_back("Set-Cookie", cookie_header(req, kCsrfCookie, csrf, false));
  }
  return r;
}

std::string app_path(const Client& c, std::string_view action) {
  std::string p = std::string(kBase) + percent_encode(c.client_id) + "/";
  if (!action.empty()) p += std::string(action) + "/";
  return p;
}

HttpResponse list_page(const std::vector<Client>& apps, const Auth& auth) {
  std::string b;
  if (apps.empty()) {
    b += "<p>No applications are registered yet.</p>\n";
  } else {
    b += "<table>\n<caption class=\"help\">" + std::to_string(apps.size()) +
         (apps.size() == 1 ? " application" : " applications") +
         "</caption>\n<thead><tr><th scope=\"col\">Name</th>"
         "<th scope=\"col\">Client id</th><th scope=\"col\">Client type</th>"
         "<th scope=\"col\">Grant types</th></tr></thead>\n<tbody>\n";
    for (const Client& c : apps) {
      b += "<tr><td><a href=\"" + html_escape(app_path(c, "")) + "\">" + html_escape(c.name) +
           "</a></td><td><code>" + html_escape(c.client_id) + "</code></td><td>" +
           (c.confidential ? "Confidential" : "Public") + (c.disabled ? " (disabled)" : "") +
           "</td><td>" + html_escape(grants_text(c)) + "</td></tr>\n";
    }
    b += "</tbody>\n</table>\n";
  }
  b += "<p class=\"actions\"><a href=\"/o/applications/register/\">Register "
       "a new application</a></p>\n";
  return page(200, "Applications", b, &auth);
}

HttpResponse detail_page(const Client& c, const Auth& auth) {
  std::string b = "<dl>\n<dt>Name</dt><dd>" + html_escape(c.name) + "</dd>\n";
  b +=
      "<dt>Client id</dt><dd><code id=\"client_id\">" + html_escape(c.client_id) + "</code></dd>\n";
  b += std::string("<dt>Client type</dt><dd>") + (c.confidential ? "Confidential" : "Public") +
       "</dd>\n";
  b += "<dt>Client secret</dt><dd>" +
       std::string(c.confidential ? "Stored hashed: it cannot be shown. Rotate it to "
                                    "get a new one."
                                  : "None (public client)") +
       "</dd>\n";
  b += "<dt>Authorization grant types</dt><dd>" + html_escape(grants_text(c)) + "</dd>\n";
  b += "<dt>Redirect uris</dt><dd>";
  if (c.redirect_uris.empty()) b += "None";
  for (size_t i = 0; i < c.redirect_uris.size(); i++) {
    b += (i ? "<br><code>" : "<code>") + html_escape(c.redirect_uris[i]) + "</code>";
  }
  b += "</dd>\n<dt>Allowed scope</dt><dd>" +
       (c.scope.empty() ? std::string("The server's default")
                        : "<code>" + html_escape(c.scope) + "</code>") +
       "</dd>\n";
  b += "<dt>Client authentication</dt><dd>" +
       (c.auth_method.empty()
            ? std::string(c.confidential ? "HTTP Basic or body" : "None (public client)")
            : html_escape(c.auth_method)) +
       "</dd>\n";
  b += "<dt>Access token lifetime</dt><dd>" +
       (c.access_token_ttl > 0 ? std::to_string(c.access_token_ttl) + " seconds"
                               : std::string("The server's default")) +
       "</dd>\n";
  b += "<dt>Created</dt><dd>" + html_escape(utc_time(c.created_at)) + "</dd>\n";
  if (c.disabled) b += "<dt>Status</dt><dd>Disabled</dd>\n";
  b += "</dl>\n<div class=\"actions\">\n<a href=\"" + html_escape(app_path(c, "update")) +
       "\">Edit</a>\n<a href=\"" + html_escape(app_path(c, "delete")) + "\">Delete</a>\n";
  if (c.confidential) {
    b += "<form method=\"post\" action=\"" + html_escape(app_path(c, "rotate-secret")) + "\">" +
         hidden("csrf", auth.session.csrf) +
         "<button type=\"submit\">Rotate the client secret</button></form>\n";
  }
  b += "<a href=\"/o/applications/\">Back to the applications</a>\n</div>\n";
  return page(200, c.name, b, &auth);
}

HttpResponse register_page(int status, const AppForm& v, const Errors& e, const Auth& auth) {
  std::string b = app_form_html(v, e, true, "/o/applications/register/", auth.session.csrf);
  return page(status, "Register a new application", b, &auth);
}

HttpResponse update_page(int status, const Client& c, const AppForm& v, const Errors& e,
                         const Auth& auth) {
  std::string b = app_form_html(v, e, false, app_path(c, "update"), auth.session.csrf);
  return page(status, "Edit " + c.name, b, &auth);
}

HttpResponse secret_page(const Client& c, std::string_view secret, bool created, const Auth& auth) {
  std::string b;
  if (c.confidential) {
    b += "<div class=\"notice\" role=\"alert\"><p><strong>Copy the client "
         "secret now: it will not be shown again.</strong> Only a hash of "
         "it is stored.";
    if (!created) b += " The previous secret no longer works.";
    b += "</p></div>\n";
  }
  b += "<dl>\n<dt>Name</dt><dd>" + html_escape(c.name) + "</dd>\n";
  b += "<dt>Client id</dt><dd><code class=\"secret\" id=\"client_id\">" + html_escape(c.client_id) +
       "</code></dd>\n";
  if (c.confidential) {
    b += "<dt>Client secret</dt><dd><code class=\"secret\" "
         "id=\"client_secret\">" +
         html_escape(secret) + "</code></dd>\n";
  } else {
    b += "<dt>Client secret</dt><dd>None: a public client has no "
         "secret.</dd>\n";
  }
  b += "</dl>\n";
  if (c.confidential && c.allows_grant("client_credentials")) {
    b += "<p>Get an access token with <code>POST /o/token/</code>, "
         "<code>grant_type=client_credentials</code> and HTTP Basic "
         "authentication: the client id as the user name, the secret as the "
         "password.</p>\n";
  }
  b += "<div class=\"actions\"><a href=\"" + html_escape(app_path(c, "")) +
       "\">Go to the application</a>\n<a href=\"/o/applications/\">Back to "
       "the applications</a></div>\n";
  return page(200, created ? "Application registered" : "New client secret", b, &auth);
}

HttpResponse delete_page(const Client& c, const Auth& auth) {
  std::string b = "<p>Delete the application <strong>" + html_escape(c.name) +
                  "</strong> (client id <code>" + html_escape(c.client_id) +
                  "</code>)? Every token issued to it stops working at "
                  "once. This cannot be undone.</p>\n";
  b += "<form method=\"post\" action=\"" + html_escape(app_path(c, "delete")) + "\">\n" +
       hidden("csrf", auth.session.csrf) +
       "<div class=\"actions\"><button type=\"submit\" "
       "class=\"danger\">Delete</button>\n<a href=\"" +
       html_escape(app_path(c, "")) + "\">Cancel</a></div>\n</form>\n";
  return page(200, "Delete " + c.name, b, &auth);
}

}  // namespace oauth2::admin::web
