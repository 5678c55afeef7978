// The web pages of the daemon, under /o/applications/ (django-oauth-
// toolkit's application pages; docs/compat.md, seeds 000 and 001): a
// staff user logs in with a session cookie, registers an application and
// sees its client secret once, lists, shows, edits and deletes
// applications and rotates a secret.  Plain HTML forms, no JavaScript,
// no third-party asset; every POST carries a CSRF token; every response
// carries the security headers of docs/security.md R26 and
// Cache-Control: no-store.

#pragma once

#include "http.hpp"

namespace oauth2::admin {

// Answers every request whose path starts with "/o/applications/".  Safe
// to call from several threads at once; never throws.  The responses
// carry their own Content-Type, security and Set-Cookie headers: the
// HTTP layer adds none of those.
HttpResponse web_handle(ServeContext& ctx, const HttpRequest& req);

}  // namespace oauth2::admin
