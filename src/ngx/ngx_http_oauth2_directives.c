
/*
 * ngx_http_oauth2_module: the directives.  Each value is checked on its
 * directive, so that nginx -t names the line; what the values mean
 * together is the core's to check (ngx_http_oauth2_location.c).
 */


#include "ngx_http_oauth2.h"


/* address space, not disk: the file grows as records are written */
#if (NGX_PTR_SIZE == 8)
#define NGX_HTTP_OAUTH2_DEFAULT_MAPSIZE  ((size_t) 16 << 30)
#else
#define NGX_HTTP_OAUTH2_DEFAULT_MAPSIZE  ((size_t) 1 << 30)
#endif


/* a path that names a directory of its own: no "." or ".." component,
 * neither "/" nor `other` (nginx's prefix), trailing slashes aside */

static ngx_uint_t
ngx_http_oauth2_own_directory(ngx_str_t *path, ngx_str_t *other)
{
    u_char  *p, *end, *c;
    size_t   len, olen;

    end = path->data + path->len;

    for (p = path->data; p < end; p = c + 1) {
        c = ngx_strlchr(p, end, '/');

        if (c == NULL) {
            c = end;
        }

        if ((c - p == 1 && p[0] == '.')
            || (c - p == 2 && p[0] == '.' && p[1] == '.'))
        {
            return 0;
        }
    }

    len = path->len;

    while (len > 0 && path->data[len - 1] == '/') {
        len--;
    }

    olen = other->len;

    while (olen > 0 && other->data[olen - 1] == '/') {
        olen--;
    }

    return len > 0
           && !(len == olen && ngx_strncmp(path->data, other->data, len) == 0);
}


static char *ngx_http_oauth2_named_number(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *arg, const char *name, ngx_int_t min, ngx_int_t max,
    const char *usage, ngx_uint_t *out);
static char *ngx_http_oauth2_store_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_cluster_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_oauth2_cluster_file(ngx_conf_t *cf,
    ngx_http_oauth2_main_conf_t *mcf, ngx_str_t *param);
static char *ngx_http_oauth2_cluster_check(ngx_conf_t *cf,
    ngx_http_oauth2_main_conf_t *mcf);
static ngx_int_t ngx_http_oauth2_cstr(ngx_pool_t *pool, ngx_str_t *s);
static char *ngx_http_oauth2_endpoint_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_login_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_status_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_auth_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_scope_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_audience_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_default_scope_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_issuer_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_realm_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_validation_cache_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_auth_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_hash_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_password_policy_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_thread_pool_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_template_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_read_template(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *dst);
static char *ngx_http_oauth2_rate_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_jwt_key_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_solution_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_check_sec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_oauth2_check_num(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_oauth2_out_of_bounds(ngx_conf_t *cf, char *text);
static char *ngx_http_oauth2_check_zone_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_oauth2_expiry_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_join_args(ngx_conf_t *cf, ngx_str_t *out);


/* a time directive's range, checked on the directive */
typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    time_t                    low;
    time_t                    high;
    char                     *text;
} ngx_http_oauth2_sec_bounds_t;


static ngx_http_oauth2_sec_bounds_t  ngx_http_oauth2_positive = {
    ngx_http_oauth2_check_sec, 1, NGX_MAX_INT32_VALUE,
    "must be 1s to 68y (2147483647 seconds)"
};

static ngx_http_oauth2_sec_bounds_t  ngx_http_oauth2_code_ttl_bounds = {
    ngx_http_oauth2_check_sec, 1, 600, "must be 1s to 10m (RFC 6749 4.1.2)"
};

static ngx_http_oauth2_sec_bounds_t  ngx_http_oauth2_device_code_ttl_bounds = {
    ngx_http_oauth2_check_sec, 1, 86400, "must be 1s to 1d"
};

static ngx_http_oauth2_sec_bounds_t  ngx_http_oauth2_handshake_ttl_bounds = {
    ngx_http_oauth2_check_sec, 60, NGX_MAX_INT32_VALUE, "must be at least 60s"
};

static ngx_http_oauth2_sec_bounds_t  ngx_http_oauth2_grace_bounds = {
    ngx_http_oauth2_check_sec, 0, 86400, "must be 0 to 1d"
};

/* the throttles need room for a few hundred keys at least */
static ngx_conf_post_t  ngx_http_oauth2_zone_size_post = {
    ngx_http_oauth2_check_zone_size
};

/* a number directive's range, said with the directive (nginx's own
 * ngx_conf_check_num_bounds does not name it) */
typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    ngx_int_t                 low;
    ngx_int_t                 high;
    char                     *text;
} ngx_http_oauth2_num_bounds_t;

static ngx_http_oauth2_num_bounds_t  ngx_http_oauth2_pbkdf2_bounds = {
    ngx_http_oauth2_check_num, 1000, 100000000, "must be 1000 to 100000000"
};

static ngx_conf_enum_t  ngx_http_oauth2_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};

static ngx_conf_enum_t  ngx_http_oauth2_token_formats[] = {
    { ngx_string("opaque"), 0 },
    { ngx_string("jwt"), 1 },
    { ngx_null_string, 0 }
};


#define NGX_HTTP_OAUTH2_ANY  (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF             \
                              |NGX_HTTP_LOC_CONF)


ngx_command_t  ngx_http_oauth2_commands[] = {

    { ngx_string("oauth2_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_store_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_cluster_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_oauth2_main_conf_t, zone_size),
      &ngx_http_oauth2_zone_size_post },

    { ngx_string("oauth2_dpop_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_oauth2_main_conf_t, dpop_zone_size),
      &ngx_http_oauth2_zone_size_post },

    { ngx_string("oauth2_expiry_cleanup"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_expiry_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_hash_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_hash_limit_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_oauth2_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* the endpoints: the offset is the endpoint's id (the core's table) */

    { ngx_string("oauth2_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_TOKEN,
      NULL },

    { ngx_string("oauth2_revoke"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_REVOKE,
      NULL },

    { ngx_string("oauth2_authorize"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_AUTHORIZE,
      NULL },

    { ngx_string("oauth2_introspect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_INTROSPECT,
      NULL },

    { ngx_string("oauth2_register"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_REGISTER,
      NULL },

    { ngx_string("oauth2_login"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_LOGIN,
      NULL },

    { ngx_string("oauth2_metadata"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_METADATA,
      NULL },

    { ngx_string("oauth2_handshake"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_HANDSHAKE,
      NULL },

    { ngx_string("oauth2_jwks"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_JWKS,
      NULL },

    { ngx_string("oauth2_jwt_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_JWT_TOKEN,
      NULL },

    { ngx_string("oauth2_jwt_refresh"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_JWT_REFRESH,
      NULL },

    { ngx_string("oauth2_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_oauth2_status_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_STATUS,
      NULL },

    { ngx_string("oauth2_userinfo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_USERINFO,
      NULL },

    { ngx_string("oauth2_end_session"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_END_SESSION,
      NULL },

    { ngx_string("oauth2_device_authorization"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION,
      NULL },

    { ngx_string("oauth2_device"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_DEVICE,
      NULL },

    { ngx_string("oauth2_authorized_grants"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      OAUTH2_ENDPOINT_AUTHORIZED_GRANTS,
      NULL },

    /* bearer validation */

    { ngx_string("auth_oauth2"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_http_oauth2_auth_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_scope"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_1MORE,
      ngx_http_oauth2_scope_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_validation_cache"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_http_oauth2_validation_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, valid_cache),
      NULL },

    { ngx_string("auth_oauth2_audience"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_http_oauth2_audience_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, auth_audience),
      NULL },

    /* tokens */

    { ngx_string("oauth2_access_token_ttl"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, access_token_ttl),
      &ngx_http_oauth2_positive },

    { ngx_string("oauth2_refresh_token_ttl"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refresh_token_ttl),
      &ngx_http_oauth2_positive },

    { ngx_string("oauth2_refresh_token_grace"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refresh_grace),
      &ngx_http_oauth2_grace_bounds },

    { ngx_string("oauth2_code_ttl"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, code_ttl),
      &ngx_http_oauth2_code_ttl_bounds },

    { ngx_string("oauth2_device_code_ttl"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, device_code_ttl),
      &ngx_http_oauth2_device_code_ttl_bounds },

    { ngx_string("oauth2_default_scope"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_1MORE,
      ngx_http_oauth2_default_scope_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_pbkdf2_iterations"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, pbkdf2_iterations),
      &ngx_http_oauth2_pbkdf2_bounds },

    { ngx_string("oauth2_realm"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_realm_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_issuer"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_http_oauth2_issuer_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_authorize_template"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE2,
      ngx_http_oauth2_template_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* JWTs */

    { ngx_string("oauth2_jwt_key"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE12,
      ngx_http_oauth2_jwt_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_jwt_audience"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, audience),
      NULL },

    { ngx_string("oauth2_access_token_format"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, jwt_access),
      &ngx_http_oauth2_token_formats },

    /* seed 002's handshake */

    { ngx_string("oauth2_handshake_key"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, handshake_key),
      NULL },

    { ngx_string("oauth2_handshake_solution"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_2MORE,
      ngx_http_oauth2_solution_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_handshake_max_ttl"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, handshake_max_ttl),
      &ngx_http_oauth2_handshake_ttl_bounds },

    /* limits */

    { ngx_string("oauth2_dpop"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE123,
      ngx_http_oauth2_dpop_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_rate_limit"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE12,
      ngx_http_oauth2_rate_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_client_auth_limit"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE12,
      ngx_http_oauth2_auth_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, auth_limit),
      NULL },

    { ngx_string("oauth2_account_limit"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE12,
      ngx_http_oauth2_auth_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, account_limit),
      NULL },

    { ngx_string("oauth2_password_policy"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_1MORE,
      ngx_http_oauth2_password_policy_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_refusal_log_level"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refusal_log_level),
      &ngx_http_oauth2_log_levels },

    { ngx_string("oauth2_thread_pool"),
      NGX_HTTP_OAUTH2_ANY|NGX_CONF_TAKE1,
      ngx_http_oauth2_thread_pool_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


/* oauth2_store <dir> [size=<n>m|g] */

static char *
ngx_http_oauth2_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    off_t       size;
    ngx_str_t  *value, s;

    if (mcf->store_path.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_store\" needs a directory");
        return NGX_CONF_ERROR;
    }

    mcf->store_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->store_path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * The master gives the directory to the workers' user: never "/",
     * nginx's prefix (Debian's holds the modules/ that load_module
     * follows) or one named through "." or ".."
     */

    if (!ngx_http_oauth2_own_directory(&mcf->store_path, &cf->cycle->prefix)
        || !ngx_http_oauth2_own_directory(&mcf->store_path,
                                          &cf->cycle->conf_prefix))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_store\" needs a directory of its own, "
                           "not \"%V\" (\"/\", nginx's prefix or a path "
                           "through \".\" or \"..\")", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->mapsize = NGX_HTTP_OAUTH2_DEFAULT_MAPSIZE;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "size=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"oauth2_store\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 5;
        s.len = value[2].len - 5;

        size = ngx_parse_offset(&s);

        if (size == NGX_ERROR || size < 1024 * 1024
            || (uint64_t) size > (uint64_t) NGX_MAX_SIZE_T_VALUE)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid size \"%V\" of \"oauth2_store\", "
                               "it must be at least 1m", &value[2]);
            return NGX_CONF_ERROR;
        }

        mcf->mapsize = (size_t) size;
    }

    return NGX_CONF_OK;
}


/* s as a NUL-terminated copy (len unchanged) */

static ngx_int_t
ngx_http_oauth2_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';
    s->data = p;

    return NGX_OK;
}


/*
 * oauth2_cluster's cacert=, cert= and key=: the full path (relative to the
 * configuration's directory, as ssl_certificate), NUL-terminated;
 * NGX_DECLINED for another parameter
 */

static ngx_int_t
ngx_http_oauth2_cluster_file(ngx_conf_t *cf, ngx_http_oauth2_main_conf_t *mcf,
    ngx_str_t *param)
{
    size_t      n;
    ngx_str_t   v, *file;

    if (ngx_strncmp(param->data, "cacert=", 7) == 0) {
        file = &mcf->cluster_cacert;
        n = 7;

    } else if (ngx_strncmp(param->data, "cert=", 5) == 0) {
        file = &mcf->cluster_cert;
        n = 5;

    } else if (ngx_strncmp(param->data, "key=", 4) == 0) {
        file = &mcf->cluster_key;
        n = 4;

    } else {
        return NGX_DECLINED;
    }

    v.data = param->data + n;
    v.len = param->len - n;

    if (v.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_cluster\" has an empty \"%V\"", param);
        return NGX_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &v, 1) != NGX_OK
        || ngx_http_oauth2_cstr(cf->pool, &v) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *file = v;

    return NGX_OK;
}


/* oauth2_cluster etcd=<url>[,<url>...] [prefix=/oauth2/] [max_staleness=5s]
 *     [cacert=<file>] [cert=<file>] [key=<file>] */

static char *
ngx_http_oauth2_cluster_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_str_t   *value, v;
    ngx_uint_t   i;
    ngx_int_t    ms, rc;

    if (mcf->cluster_etcd.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_str_set(&mcf->cluster_prefix, "/oauth2/");
    mcf->max_staleness = 5000;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "etcd=", 5) == 0) {
            mcf->cluster_etcd.data = value[i].data + 5;
            mcf->cluster_etcd.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            mcf->cluster_prefix.data = value[i].data + 7;
            mcf->cluster_prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_staleness=", 14) == 0) {
            v.data = value[i].data + 14;
            v.len = value[i].len - 14;
            ms = ngx_parse_time(&v, 0);

            if (ms == NGX_ERROR || ms < 100) {
                return "has an invalid max_staleness=, it must be a time "
                       "of 100ms or more";
            }

            mcf->max_staleness = (ngx_msec_t) ms;
            continue;
        }

        rc = ngx_http_oauth2_cluster_file(cf, mcf, &value[i]);

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"oauth2_cluster\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_oauth2_cluster_check(cf, mcf);
}


/* oauth2_cluster's values as a whole, by the core's check */

static char *
ngx_http_oauth2_cluster_check(ngx_conf_t *cf, ngx_http_oauth2_main_conf_t *mcf)
{
    u_char                 err[256];
    oauth2_cluster_tls_t   tls;

    if (mcf->cluster_etcd.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_cluster\" needs etcd=<url>[,<url>...]");
        return NGX_CONF_ERROR;
    }

    /* NUL-terminated copies for the core (the args' bytes are not) */

    if (ngx_http_oauth2_cstr(cf->pool, &mcf->cluster_etcd) != NGX_OK
        || ngx_http_oauth2_cstr(cf->pool, &mcf->cluster_prefix) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_cluster_tls(mcf, &tls);

    if (oauth2_cluster_check((char *) mcf->cluster_etcd.data,
                             (char *) mcf->cluster_prefix.data, &tls,
                             (char *) err, sizeof(err))
        != OAUTH2_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"oauth2_cluster\": %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* oauth2_cluster's TLS files for the core (NULL: none) */

void
ngx_http_oauth2_cluster_tls(ngx_http_oauth2_main_conf_t *mcf,
    oauth2_cluster_tls_t *tls)
{
    tls->cacert = mcf->cluster_cacert.len
                  ? (char *) mcf->cluster_cacert.data : NULL;
    tls->cert = mcf->cluster_cert.len ? (char *) mcf->cluster_cert.data : NULL;
    tls->key = mcf->cluster_key.len ? (char *) mcf->cluster_key.data : NULL;
}


/* oauth2_token, oauth2_revoke, ...: the command's offset is the
 * endpoint's id in the core's table */

static char *
ngx_http_oauth2_endpoint_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (olcf->endpoint != OAUTH2_ENDPOINT_NONE) {
        return "is duplicate";
    }

    if (olcf->metrics) {
        return "cannot share a location with \"oauth2_metrics\"";
    }

    ngx_http_oauth2_quiet_server(cf);

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* the handshake's sub-paths (create/, validate/, ...) follow the
     * location's prefix: a regex, an exact or a named location has none */
    if (cmd->offset == OAUTH2_ENDPOINT_HANDSHAKE
        && (clcf->exact_match || clcf->named
#if (NGX_PCRE)
            || clcf->regex
#endif
        ))
    {
        return "must be in a prefix location";
    }

    olcf->endpoint = cmd->offset;
    clcf->handler = ngx_http_oauth2_endpoint_handler;

    return NGX_CONF_OK;
}


/* oauth2_login <client_id>: the login endpoint issues to that app */

static char *
ngx_http_oauth2_login_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 200) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs the client_id of the "
                           "application whose tokens it issues", &cmd->name);
        return NGX_CONF_ERROR;
    }

    olcf->login_client_id = value[1];

    return ngx_http_oauth2_endpoint_directive(cf, cmd, conf);
}


/* oauth2_status <service name> <header> <token file> */

static char *
ngx_http_oauth2_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    u_char       c;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (value[1].len == 0 || value[2].len == 0) {
        return "needs a service name, a header name and a token file";
    }

    for (i = 0; i < value[2].len; i++) {
        c = ngx_tolower(value[2].data[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
              || c == '_'))
        {
            return "has an invalid header name";
        }

        value[2].data[i] = ngx_tolower(value[2].data[i]);
    }

    olcf->status_service = value[1];
    olcf->status_header = value[2];
    olcf->status_token_file = value[3];

    if (ngx_conf_full_name(cf->cycle, &olcf->status_token_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_oauth2_endpoint_directive(cf, cmd, conf);
}


/* oauth2_authorize_template login | consent | error <file> */

static char *
ngx_http_oauth2_template_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value, *dst, name;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "login") == 0) {
        dst = &olcf->login_template;

    } else if (ngx_strcmp(value[1].data, "consent") == 0) {
        dst = &olcf->consent_template;

    } else if (ngx_strcmp(value[1].data, "error") == 0) {
        dst = &olcf->error_template;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": the page must be "
                           "\"login\", \"consent\" or \"error\", not \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (dst->data) {
        return "is duplicate";
    }

    name = value[2];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_oauth2_read_template(cf, &name, dst);
}


/* a page template: the whole file, read when the configuration is */

static char *
ngx_http_oauth2_read_template(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *dst)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"oauth2_authorize_template\": cannot open "
                           "\"%V\"", name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 256 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": \"%V\" is not a "
                           "readable file of at most 256k", name);
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    dst->len = (size_t) ngx_file_size(&fi);
    dst->data = ngx_pnalloc(cf->pool, dst->len + 1);
    if (dst->data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, dst->data, dst->len, 0);

    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) dst->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": cannot read "
                           "\"%V\"", name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_oauth2_check_realm(ngx_str_t *realm)
{
    u_char  *p;

    for (p = realm->data; p < realm->data + realm->len; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* auth_oauth2 <realm> | off */

static char *
ngx_http_oauth2_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->auth != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->auth = 0;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0 || value[1].len > 128
        || ngx_http_oauth2_check_realm(&value[1]) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid realm \"%V\" in \"auth_oauth2\": 1 to 128 "
                           "printable characters without '\"' or '\\'",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    olcf->auth = 1;
    olcf->realm = value[1];
    ngx_http_oauth2_quiet_server(cf);

    return NGX_CONF_OK;
}


/* RFC 8707: the resource this location is, an absolute URI */

static char *
ngx_http_oauth2_audience_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char       *rv;
    ngx_str_t  *value;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    if (!oauth2_resource_valid(value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"auth_oauth2_audience\" \"%V\": an "
                           "absolute URI without a fragment, at most 1024 "
                           "printable characters", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_join_args(ngx_conf_t *cf, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;
    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    out->data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    out->len = p - out->data;

    return NGX_CONF_OK;
}


/* auth_oauth2_scope <scope> ...: every one is required */

static char *
ngx_http_oauth2_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t     *value;
    ngx_uint_t     i;
    oauth2_str_t  *s;

    if (olcf->scopes != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    olcf->scopes = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(oauth2_str_t));
    if (olcf->scopes == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (!oauth2_scope_valid(value[i].data, value[i].len)
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, ' '))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid scope \"%V\" in \"auth_oauth2_scope\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(olcf->scopes);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_http_oauth2_str(s, &value[i]);
    }

    return NGX_CONF_OK;
}


/* oauth2_default_scope <scope> ... */

static char *
ngx_http_oauth2_default_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    if (olcf->default_scope.data) {
        return "is duplicate";
    }

    if (ngx_http_oauth2_join_args(cf, &olcf->default_scope) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!oauth2_scope_valid(olcf->default_scope.data,
                            olcf->default_scope.len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scope \"%V\" in \"oauth2_default_scope\"",
                           &olcf->default_scope);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* oauth2_issuer <url>: http or https; a trailing '/' goes (the endpoints'
 * paths are appended to it) */

static char *
ngx_http_oauth2_issuer_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->issuer.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    olcf->issuer = value[1];

    while (olcf->issuer.len && olcf->issuer.data[olcf->issuer.len - 1] == '/')
    {
        olcf->issuer.len--;
    }

    if ((olcf->issuer.len <= 8
         || ngx_strncmp(olcf->issuer.data, "https://", 8) != 0)
        && (olcf->issuer.len <= 7
            || ngx_strncmp(olcf->issuer.data, "http://", 7) != 0))
    {
        return "must be an http or https URL";
    }

    return NGX_CONF_OK;
}


/*
 * oauth2_realm <name>: the store realm of the server's endpoints and
 * auth_oauth2 locations, the same names oauth2-admin takes
 */

static char *
ngx_http_oauth2_realm_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t   *value;
    oauth2_str_t  name;

    if (olcf->store_realm.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_http_oauth2_str(&name, &value[1]);

    if (!oauth2_valid_realm(&name)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid realm \"%V\" in \"oauth2_realm\": 1 to 64 "
                           "letters, digits, \".\", \"-\" or \"_\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    olcf->store_realm = value[1];

    return NGX_CONF_OK;
}


/* oauth2_validation_cache <entries> | off */

static char *
ngx_http_oauth2_validation_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *entries;

    entries = (ngx_uint_t *) (p + cmd->offset);

    if (*entries != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *entries = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > 1048576) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": a number of "
                           "entries, 1 to 1048576, or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    *entries = n;

    return NGX_CONF_OK;
}


/* oauth2_client_auth_limit, oauth2_account_limit: <n> <time> | off */

static char *
ngx_http_oauth2_auth_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_int_t                 n;
    ngx_str_t                *value;
    ngx_http_oauth2_limit_t  *limit;

    limit = (ngx_http_oauth2_limit_t *) (p + cmd->offset);

    if (limit->count != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "off") == 0) {
            limit->count = 0;
            limit->window = 60;
            return NGX_CONF_OK;
        }

        return "takes a count and a time, or \"off\"";
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid count \"%V\" in \"%V\": 1 to 100000",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    limit->count = n;
    limit->window = ngx_parse_time(&value[2], 1);

    if (limit->window == (time_t) NGX_ERROR || limit->window == 0
        || limit->window > 86400)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\": 1s to 1d",
                           &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* oauth2_hash_limit <n> [queue=<m>] */

static char *
ngx_http_oauth2_hash_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (mcf->hash_running != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number \"%V\" in \"%V\": 1 to 1024",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    mcf->hash_running = n;
    mcf->hash_waiting = 64;

    if (cf->args->nelts == 3) {
        return ngx_http_oauth2_named_number(cf, cmd, &value[2], "queue", 0,
                   100000, "takes a number and optionally queue=<n>",
                   &mcf->hash_waiting);
    }

    return NGX_CONF_OK;
}


/* oauth2_password_policy off | min_length=<n> similarity=<x> ... */

static char *
ngx_http_oauth2_password_policy_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    char          err[256];
    oauth2_str_t  spec;

    if (olcf->password_policy.data) {
        return "is duplicate";
    }

    if (ngx_http_oauth2_join_args(cf, &olcf->password_policy) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_str(&spec, &olcf->password_policy);

    if (oauth2_check_password_policy(spec, err, sizeof(err)) != OAUTH2_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The optional "<name>=<n>" parameter of a directive, min to max;
 * usage is the message for a parameter of another name.
 */

static char *
ngx_http_oauth2_named_number(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *arg, const char *name, ngx_int_t min, ngx_int_t max,
    const char *usage, ngx_uint_t *out)
{
    size_t     len;
    ngx_int_t  n;

    len = ngx_strlen(name);

    if (arg->len <= len || ngx_strncmp(arg->data, name, len) != 0
        || arg->data[len] != '=')
    {
        return (char *) usage;
    }

    n = ngx_atoi(arg->data + len + 1, arg->len - len - 1);
    if (n == NGX_ERROR || n < min || n > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s \"%V\" in \"%V\": %i to %i",
                           name, arg, &cmd->name, min, max);
        return NGX_CONF_ERROR;
    }

    *out = n;

    return NGX_CONF_OK;
}


/* oauth2_thread_pool <name> | off */

static char *
ngx_http_oauth2_thread_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
#if (NGX_THREADS)
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->threads != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->threads = 0;
        return NGX_CONF_OK;
    }

    olcf->threads = 1;
    olcf->thread_pool_name = value[1];

    return NGX_CONF_OK;
#else
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    return "requires nginx built with --with-threads";
#endif
}


/* a rate's unit in seconds, 0 if it is none */

static ngx_uint_t
ngx_http_oauth2_rate_unit(ngx_str_t *unit)
{
    static const struct {
        const char  *short_name;
        const char  *name;
        ngx_uint_t   seconds;
    } units[] = {
        { "s", "second", 1 }, { "m", "minute", 60 },
        { "h", "hour", 3600 }, { "d", "day", 86400 }
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ngx_strcmp(unit->data, units[i].short_name) == 0
            || ngx_strcmp(unit->data, units[i].name) == 0)
        {
            return units[i].seconds;
        }
    }

    return 0;
}


/* oauth2_rate_limit off | <n>/<unit> [<n>/<unit>]: s, m, h, d */

static char *
ngx_http_oauth2_rate_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    u_char     *slash;
    ngx_int_t   n;
    ngx_str_t  *value, unit;
    ngx_uint_t  i;

    if (olcf->nrates != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    olcf->rates_set = 1;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        olcf->nrates = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        slash = ngx_strlchr(value[i].data, value[i].data + value[i].len, '/');

        n = slash ? ngx_atoi(value[i].data, slash - value[i].data) : NGX_ERROR;

        if (n <= 0) {
            goto invalid;
        }

        /* the count is 32 bits: a larger n would wrap to a small one */
        if (n > NGX_HTTP_OAUTH2_MAX_RATE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid rate \"%V\" in \"%V\": <n> must be "
                               "1 to %d", &value[i], &cmd->name,
                               NGX_HTTP_OAUTH2_MAX_RATE);
            return NGX_CONF_ERROR;
        }

        unit.data = slash + 1;
        unit.len = value[i].data + value[i].len - unit.data;

        olcf->rates[i - 1].limit = n;
        olcf->rates[i - 1].window = ngx_http_oauth2_rate_unit(&unit);

        if (olcf->rates[i - 1].window == 0) {
            goto invalid;
        }
    }

    if (cf->args->nelts == 3
        && olcf->rates[0].window == olcf->rates[1].window)
    {
        return "names the same window twice";
    }

    olcf->nrates = cf->args->nelts - 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\" in \"%V\": use <n>/s, <n>/m, "
                       "<n>/h or <n>/d, e.g. 1000/h 100/m",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* oauth2_jwt_key <file> [hmac] */

static char *
ngx_http_oauth2_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t          *value, path;
    oauth2_key_file_t  *k;

    value = cf->args->elts;

    if (cf->args->nelts == 3 && ngx_strcmp(value[2].data, "hmac") != 0) {
        return "takes a file and optionally \"hmac\"";
    }

    if (olcf->jwt_keys == NGX_CONF_UNSET_PTR) {
        olcf->jwt_keys = ngx_array_create(cf->pool, 2,
                                          sizeof(oauth2_key_file_t));
        if (olcf->jwt_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    k = ngx_array_push(olcf->jwt_keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_str(&k->path, &path);
    k->hmac = (cf->args->nelts == 3);

    return NGX_CONF_OK;
}


/* oauth2_handshake_solution <name> <role>=<database> ... */

static char *
ngx_http_oauth2_solution_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t     *value;
    ngx_uint_t     i;
    ngx_array_t   *sol;
    oauth2_str_t  *args;

    value = cf->args->elts;

    if (cf->args->nelts > 17) {
        return "takes at most 16 databases";
    }

    if (olcf->solutions == NGX_CONF_UNSET_PTR) {
        olcf->solutions = ngx_array_create(cf->pool, 2, sizeof(ngx_array_t));
        if (olcf->solutions == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    sol = ngx_array_push(olcf->solutions);
    if (sol == NULL
        || ngx_array_init(sol, cf->pool, cf->args->nelts - 1,
                          sizeof(oauth2_str_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        args = ngx_array_push(sol);
        if (args == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_http_oauth2_str(args, &value[i]);
    }

    return NGX_CONF_OK;
}


/* a time directive out of its range: said as "<directive>" <why> */

static char *
ngx_http_oauth2_check_sec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_oauth2_sec_bounds_t *b = post;
    time_t *sp = data;

    if (*sp >= b->low && *sp <= b->high) {
        return NGX_CONF_OK;
    }

    return ngx_http_oauth2_out_of_bounds(cf, b->text);
}


/* a number directive out of its range: the same */

static char *
ngx_http_oauth2_check_num(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_oauth2_num_bounds_t *b = post;
    ngx_int_t *np = data;

    if (*np >= b->low && *np <= b->high) {
        return NGX_CONF_OK;
    }

    return ngx_http_oauth2_out_of_bounds(cf, b->text);
}


static char *
ngx_http_oauth2_out_of_bounds(ngx_conf_t *cf, char *text)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" %s", &value[0], text);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_oauth2_check_zone_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t *sp = data;

    if (*sp < 64 * 1024) {
        return "must be at least 64k";
    }

    return NGX_CONF_OK;
}


/* oauth2_expiry_cleanup <interval> [batch=<n>] | off */

static char *
ngx_http_oauth2_expiry_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   interval;

    if (mcf->expiry_interval != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no batch when off";
        }

        mcf->expiry_interval = 0;
        return NGX_CONF_OK;
    }

    interval = ngx_parse_time(&value[1], 0);

    if (interval == (ngx_msec_t) NGX_ERROR || interval < 1000
        || interval > 86400000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid interval \"%V\" in \"%V\": 1s to 1d, "
                           "or off", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    mcf->expiry_interval = interval;

    if (cf->args->nelts == 3) {
        /*
         * at most the tokens one commit deletes whole (Store::kRevokeWhole):
         * a larger batch's last run would delete them all in one write
         * transaction, holding every worker's issuance behind it
         */
        return ngx_http_oauth2_named_number(cf, cmd, &value[2], "batch", 1,
                   10000, "takes an interval and optionally batch=<n>",
                   &mcf->expiry_batch);
    }

    return NGX_CONF_OK;
}
