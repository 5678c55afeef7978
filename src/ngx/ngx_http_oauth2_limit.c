
/*
 * ngx_http_oauth2_module: counters of failed attempts in shared memory,
 * one fixed window per key, shared by every worker and kept across
 * reloads.  Keys are short strings ("c:<client_id>", "a:<address>").
 */


#include "ngx_http_oauth2.h"


typedef struct {
    u_char                       color;
    u_char                       len;
    u_short                      padding;
    ngx_queue_t                  queue;
    time_t                       start;       /* of the current window */
    ngx_uint_t                   count;
    u_char                       data[1];
} ngx_http_oauth2_limit_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;       /* least recently used last */
} ngx_http_oauth2_limit_sh_t;


typedef struct {
    ngx_http_oauth2_limit_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
} ngx_http_oauth2_limit_ctx_t;


static void
ngx_http_oauth2_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_oauth2_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_http_oauth2_limit_node_t *) &node->color;
            lnt = (ngx_http_oauth2_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


ngx_int_t
ngx_http_oauth2_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                       len;
    ngx_slab_pool_t             *shpool;
    ngx_http_oauth2_limit_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    shm_zone->data = shpool;

    if (data || shm_zone->shm.exists) {
        /* a reload reuses the zone: keep the counts */
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_oauth2_limit_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_oauth2_limit_rbtree_insert);

    ngx_queue_init(&sh->queue);

    len = sizeof(" in oauth2 zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in oauth2 zone \"%V\"%Z",
                &shm_zone->shm.name);

    shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_oauth2_limit_ctx(ngx_shm_zone_t *zone,
    ngx_http_oauth2_limit_ctx_t *ctx)
{
    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;
    ctx->sh = ctx->shpool->data;
}


static ngx_http_oauth2_limit_node_t *
ngx_http_oauth2_limit_lookup(ngx_http_oauth2_limit_ctx_t *ctx, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_oauth2_limit_node_t  *ln;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_oauth2_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data, key->len, (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* seconds until key may try again, 0 if it may now */

ngx_uint_t
ngx_http_oauth2_limit_blocked(ngx_shm_zone_t *zone, ngx_str_t *key,
    ngx_uint_t limit, time_t window)
{
    time_t                         now;
    uint32_t                       hash;
    ngx_uint_t                     wait;
    ngx_http_oauth2_limit_ctx_t    lctx, *ctx;
    ngx_http_oauth2_limit_node_t  *ln;

    if (zone == NULL || limit == 0 || key->len == 0 || key->len > 255) {
        return 0;
    }

    ctx = &lctx;
    ngx_http_oauth2_limit_ctx(zone, ctx);
    hash = ngx_crc32_short(key->data, key->len);
    now = ngx_time();
    wait = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_oauth2_limit_lookup(ctx, key, hash);

    if (ln && now - ln->start < window && ln->count >= limit) {
        wait = (ngx_uint_t) (ln->start + window - now);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return wait;
}


/* the key's node, created (evicting the least recently used if the zone is
 * full) if missing; NULL if there is no room.  Called with the mutex held. */

static ngx_http_oauth2_limit_node_t *
ngx_http_oauth2_limit_node(ngx_http_oauth2_limit_ctx_t *ctx, ngx_str_t *key,
    time_t start)
{
    size_t                         size;
    uint32_t                       hash;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_oauth2_limit_node_t  *ln;

    hash = ngx_crc32_short(key->data, key->len);

    ln = ngx_http_oauth2_limit_lookup(ctx, key, hash);

    if (ln) {
        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);
        return ln;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_oauth2_limit_node_t, data)
           + key->len;

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    /* full: forget the least recently used keys and try again */

    for (n = 0; node == NULL && n < 16; n++) {

        if (ngx_queue_empty(&ctx->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&ctx->sh->queue);
        ln = ngx_queue_data(q, ngx_http_oauth2_limit_node_t, queue);
        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));
        ngx_rbtree_delete(&ctx->sh->rbtree, node);
        ngx_slab_free_locked(ctx->shpool, node);

        node = ngx_slab_alloc_locked(ctx->shpool, size);
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    ln = (ngx_http_oauth2_limit_node_t *) &node->color;
    ln->len = (u_char) key->len;
    ln->start = start;
    ln->count = 0;
    ngx_memcpy(ln->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    return ln;
}


void
ngx_http_oauth2_limit_hit(ngx_shm_zone_t *zone, ngx_str_t *key,
    time_t window)
{
    time_t                         now;
    ngx_http_oauth2_limit_ctx_t    lctx;
    ngx_http_oauth2_limit_node_t  *ln;

    if (zone == NULL || key->len == 0 || key->len > 255) {
        return;
    }

    ngx_http_oauth2_limit_ctx(zone, &lctx);
    now = ngx_time();

    ngx_shmtx_lock(&lctx.shpool->mutex);

    ln = ngx_http_oauth2_limit_node(&lctx, key, now);

    if (ln) {
        if (now - ln->start >= window) {
            ln->start = now;
            ln->count = 0;
        }

        ln->count++;
    }

    ngx_shmtx_unlock(&lctx.shpool->mutex);
}


/*
 * Request rate limits: fixed windows aligned to the clock (an hour window
 * resets on the hour), one counter per window, limit and caller.  A request is
 * counted in every window or in none: one refused by the minute's burst
 * does not spend the hour's budget.  Returns 0 if allowed, else the seconds
 * until it would be; *st gets what the X-RateLimit headers say.
 */

ngx_uint_t
ngx_http_oauth2_limit_take(ngx_shm_zone_t *zone, ngx_str_t *id,
    ngx_http_oauth2_rate_t *rates, ngx_uint_t nrates,
    ngx_http_oauth2_rate_state_t *st)
{
    u_char                         buf[300];
    time_t                         now, start, reset;
    ngx_str_t                      key;
    ngx_uint_t                     i, wait, left, least;
    ngx_http_oauth2_limit_ctx_t    lctx;
    ngx_http_oauth2_limit_node_t  *ln[NGX_HTTP_OAUTH2_MAX_RATES];

    if (zone == NULL || nrates == 0 || id->len > 200) {
        return 0;
    }

    ngx_http_oauth2_limit_ctx(zone, &lctx);
    now = ngx_time();
    wait = 0;
    least = NGX_MAX_UINT32_VALUE;
    reset = now;

    ngx_shmtx_lock(&lctx.shpool->mutex);

    for (i = 0; i < nrates; i++) {
        key.data = buf;
        /* one count per caller and limit: locations with the same limit
         * share a budget, a stricter one elsewhere keeps its own */
        key.len = ngx_snprintf(buf, sizeof(buf), "R%T/%ui:%V",
                               rates[i].window, rates[i].limit, id) - buf;
        start = now - now % rates[i].window;

        ln[i] = ngx_http_oauth2_limit_node(&lctx, &key, start);

        if (ln[i] == NULL) {
            continue;   /* no room: fail open rather than refuse everyone */
        }

        if (ln[i]->start != start) {
            ln[i]->start = start;
            ln[i]->count = 0;
        }

        if (ln[i]->count >= rates[i].limit
            && (ngx_uint_t) (start + rates[i].window - now) > wait)
        {
            wait = start + rates[i].window - now;
        }
    }

    for (i = 0; i < nrates; i++) {
        if (ln[i] == NULL) {
            continue;
        }

        if (wait == 0) {
            ln[i]->count++;
        }

        left = ln[i]->count >= rates[i].limit
               ? 0 : rates[i].limit - ln[i]->count;

        if (left < least
            || (left == least && ln[i]->start + rates[i].window > reset))
        {
            least = left;
            reset = ln[i]->start + rates[i].window;
        }
    }

    ngx_shmtx_unlock(&lctx.shpool->mutex);

    st->set = 1;
    st->limit = rates[0].limit;
    st->remaining = least == NGX_MAX_UINT32_VALUE ? rates[0].limit : least;
    st->reset = reset;

    return wait;
}
