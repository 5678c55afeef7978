
/*
 * ngx_http_oauth2_module: writing the responses the core decided.
 */


#include "ngx_http_oauth2.h"


static ngx_str_t  ngx_http_oauth2_json_type = ngx_string("application/json");
static ngx_str_t  ngx_http_oauth2_html_type =
    ngx_string("text/html; charset=utf-8");

/*
 * docs/security.md R26: the pages of the authorization endpoint.  One
 * script runs, by its hash: response_mode=form_post's
 * "document.forms[0].submit()" (src/core/authorize.cpp kFormPostScript).
 */
static ngx_str_t  ngx_http_oauth2_csp = ngx_string(
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "script-src 'sha256-ePniVEkSivX/c7XWBGafqh8tSpiRrKiqYeqbG7N1TOE='; "
    "frame-ancestors 'none'; base-uri 'none'");
static ngx_str_t  ngx_http_oauth2_deny = ngx_string("DENY");
static ngx_str_t  ngx_http_oauth2_no_referrer = ngx_string("no-referrer");
static ngx_str_t  ngx_http_oauth2_nosniff = ngx_string("nosniff");
static ngx_str_t  ngx_http_oauth2_no_store = ngx_string("no-store");
static ngx_str_t  ngx_http_oauth2_no_cache = ngx_string("no-cache");
static ngx_str_t  ngx_http_oauth2_basic = ngx_string("Basic realm=\"oauth2\"");
static ngx_str_t  ngx_http_oauth2_bearer_api =
    ngx_string("Bearer realm=\"api\"");


ngx_table_elt_t *
ngx_http_oauth2_push_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return h;
}


ngx_int_t
ngx_http_oauth2_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    return ngx_http_oauth2_push_header(r, name, value) ? NGX_OK : NGX_ERROR;
}


void
ngx_http_oauth2_find_header(ngx_http_request_t *r, ngx_str_t *name,
    unsigned *count, oauth2_str_t *first)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    *count = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len != name->len
            || ngx_strncmp(h[i].lowcase_key, name->data, name->len) != 0)
        {
            continue;
        }

        if ((*count)++ == 0) {
            ngx_http_oauth2_str(first, &h[i].value);
        }
    }
}


static ngx_int_t
ngx_http_oauth2_add_number(ngx_http_request_t *r, char *name, int64_t n)
{
    u_char     *p;
    ngx_str_t   value;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    value.len = ngx_sprintf(p, "%L", n) - p;

    return ngx_http_oauth2_add_header(r, name, &value);
}


/*
 * X-RateLimit-Limit, -Remaining and -Reset (a unix time), as seed 002
 * names them, on every response of a location with oauth2_rate_limit.
 */

ngx_int_t
ngx_http_oauth2_rate_headers(ngx_http_request_t *r, oauth2_rate_state_t *st)
{
    if (!st->set) {
        return NGX_OK;
    }

    if (ngx_http_oauth2_add_number(r, "X-RateLimit-Limit", st->limit)
            != NGX_OK
        || ngx_http_oauth2_add_number(r, "X-RateLimit-Remaining",
                                      st->remaining)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_oauth2_add_number(r, "X-RateLimit-Reset", st->reset);
}


/* docs/security.md R26: the pages of the authorization endpoint */

static ngx_int_t
ngx_http_oauth2_page_headers(ngx_http_request_t *r)
{
    if (ngx_http_oauth2_add_header(r, "Content-Security-Policy",
                                   &ngx_http_oauth2_csp) != NGX_OK
        || ngx_http_oauth2_add_header(r, "X-Frame-Options",
                                      &ngx_http_oauth2_deny) != NGX_OK
        || ngx_http_oauth2_add_header(r, "Referrer-Policy",
                                      &ngx_http_oauth2_no_referrer) != NGX_OK
        || ngx_http_oauth2_add_header(r, "X-Content-Type-Options",
                                      &ngx_http_oauth2_nosniff) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the Location and Set-Cookie values the core built: percent-encoded,
 * never raw input (R23) */

static ngx_int_t
ngx_http_oauth2_core_headers(ngx_http_request_t *r, oauth2_response_t *resp)
{
    ngx_str_t   value;
    ngx_uint_t  i;

    if (resp->location.len) {
        ngx_http_oauth2_str_from(&value, &resp->location);

        if (ngx_http_oauth2_add_header(r, "Location", &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (resp->www_authenticate.len) {
        ngx_http_oauth2_str_from(&value, &resp->www_authenticate);

        if (ngx_http_oauth2_add_header(r, "WWW-Authenticate", &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (resp->dpop_nonce.len) {
        ngx_http_oauth2_str_from(&value, &resp->dpop_nonce);

        if (ngx_http_oauth2_add_header(r, "DPoP-Nonce", &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < OAUTH2_MAX_COOKIES; i++) {
        if (resp->set_cookie[i].len == 0) {
            continue;
        }

        ngx_http_oauth2_str_from(&value, &resp->set_cookie[i]);

        if (ngx_http_oauth2_add_header(r, "Set-Cookie", &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the challenges, Allow of a 405 (from the endpoint table), Retry-After */

static ngx_int_t
ngx_http_oauth2_refusal_headers(ngx_http_request_t *r,
    oauth2_response_t *resp)
{
    ngx_str_t                    value;
    ngx_http_oauth2_loc_conf_t  *olcf;

    if (resp->basic_challenge
        && ngx_http_oauth2_add_header(r, "WWW-Authenticate",
                                      &ngx_http_oauth2_basic) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (resp->bearer_challenge
        && ngx_http_oauth2_add_header(r, "WWW-Authenticate",
                                      &ngx_http_oauth2_bearer_api) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (resp->status == NGX_HTTP_NOT_ALLOWED) {
        olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

        value.data = (u_char *)
                     oauth2_endpoint_info((int) olcf->endpoint)->allow;
        value.len = ngx_strlen(value.data);

        if (ngx_http_oauth2_add_header(r, "Allow", &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (resp->retry_after
        && ngx_http_oauth2_add_number(r, "Retry-After", resp->retry_after)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * error.log lines of a request that reached the module (refusals, 503s,
 * nginx's own) name the request line and the upstream's URI without
 * their query strings, and no referrer: a client that sends a secret, a
 * token or a code in a query (?client_secret=, ?access_token=) or came
 * from a page whose URL held one would otherwise have it written there
 * at "error" (R64).  nginx's own handler does the rest, with the line cut
 * for the call.  The cut is at the line's first "?" (no method and no
 * path holds one raw), not at r->args_start, which HTTP/2's request line
 * (built in a buffer of its own) and a complex URI's parse do not point
 * into.
 */

static ngx_http_log_handler_pt  ngx_http_oauth2_nginx_log_handler;


static u_char *
ngx_http_oauth2_error_log_handler(ngx_http_request_t *r, ngx_http_request_t *sr,
    u_char *buf, size_t len)
{
    u_char               *p, *q;
    ngx_str_t             line, uri;
    ngx_table_elt_t      *referer;
    ngx_http_upstream_t  *u;

    line = r->request_line;
    referer = r->headers_in.referer;
    u = sr ? sr->upstream : NULL;

    q = ngx_strlchr(line.data, line.data + line.len, '?');
    if (q) {
        r->request_line.len = q - line.data;
    }

    if (u) {
        uri = u->uri;
        q = ngx_strlchr(uri.data, uri.data + uri.len, '?');
        if (q) {
            u->uri.len = q - uri.data;
        }
    }

    r->headers_in.referer = NULL;

    p = ngx_http_oauth2_nginx_log_handler(r, sr, buf, len);

    r->request_line = line;
    r->headers_in.referer = referer;

    if (u) {
        u->uri = uri;
    }

    return p;
}


void
ngx_http_oauth2_quiet_log(ngx_http_request_t *r)
{
    r = r->main;

    if (r->log_handler == ngx_http_oauth2_error_log_handler
        || r->log_handler == NULL)
    {
        return;
    }

    if (ngx_http_oauth2_nginx_log_handler == NULL) {
        ngx_http_oauth2_nginx_log_handler = r->log_handler;

    } else if (r->log_handler != ngx_http_oauth2_nginx_log_handler) {
        return;  /* another module's: left as it is */
    }

    r->log_handler = ngx_http_oauth2_error_log_handler;
}


/*
 * Sends resp (status, JSON or HTML body, headers) with Cache-Control:
 * no-store and Pragma: no-cache on every response (docs/security.md R9).
 */

ngx_int_t
ngx_http_oauth2_send_json(ngx_http_request_t *r, oauth2_response_t *resp)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = resp->status;
    r->headers_out.content_length_n = resp->body_len;

    if (resp->body_len) {
        r->headers_out.content_type = resp->html ? ngx_http_oauth2_html_type
                                                 : ngx_http_oauth2_json_type;
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_type_lowcase = NULL;
    }

    if ((resp->html && ngx_http_oauth2_page_headers(r) != NGX_OK)
        || ngx_http_oauth2_core_headers(r, resp) != NGX_OK
        || ngx_http_oauth2_add_header(r, "Cache-Control",
                                      &ngx_http_oauth2_no_store) != NGX_OK
        || ngx_http_oauth2_add_header(r, "Pragma", &ngx_http_oauth2_no_cache)
           != NGX_OK
        || ngx_http_oauth2_refusal_headers(r, resp) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (resp->body_len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    /*
     * Never a 304 or a 412 of nginx's conditional requests: the answer was
     * decided (a token issued, a refresh token rotated) before it is sent,
     * and "If-None-Match: *" would drop the only copy of it (RFC 9110
     * 13.1: a method that changed state is not made conditional after)
     */
    r->disable_not_modified = 1;

#if (NGX_HTTP_GZIP)
    /*
     * Never compressed, whatever gzip_types says: an answer holds a secret
     * (a token, a page's CSRF value) beside text the request chose (a
     * user_code, a scope), and its compressed length would tell how much
     * of the secret that text guessed (BREACH)
     */
    r->gzip_tested = 1;
    r->gzip_ok = 0;
#endif

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = resp->body;
    b->last = resp->body + resp->body_len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
