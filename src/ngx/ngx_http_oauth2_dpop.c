
/*
 * ngx_http_oauth2_module: the oauth2_dpop directive (RFC 9449 DPoP).  The
 * proofs are checked by the core (src/core/dpop.cpp); their jti are
 * recorded in oauth2_limit_zone (ngx_http_oauth2_limit.c).
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_DPOP_MAX_WINDOW  600


/* oauth2_dpop on | off [nonce=on|off] [iat_window=<time>] */

char *
ngx_http_oauth2_dpop_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    time_t       t;
    ngx_str_t   *value, arg;
    ngx_uint_t   i;

    if (olcf->dpop != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        olcf->dpop = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->dpop = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": on or off",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    olcf->dpop_nonce = 0;
    olcf->dpop_window = 60;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "nonce=on") == 0) {
            olcf->dpop_nonce = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "nonce=off") == 0) {
            olcf->dpop_nonce = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "iat_window=", 11) == 0) {
            arg.data = value[i].data + 11;
            arg.len = value[i].len - 11;

            t = ngx_parse_time(&arg, 1);

            if (t == (time_t) NGX_ERROR || t < 1
                || t > NGX_HTTP_OAUTH2_DPOP_MAX_WINDOW)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid iat_window \"%V\" in \"%V\": "
                                   "1s to 10m", &arg, &cmd->name);
                return NGX_CONF_ERROR;
            }

            olcf->dpop_window = t;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\": "
                           "nonce=on|off or iat_window=<time>",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
