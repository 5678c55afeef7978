
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


void
ngx_http_oauth2_limit_hit(ngx_shm_zone_t *zone, ngx_str_t *key,
    time_t window)
{
    size_t                         size;
    time_t                         now;
    uint32_t                       hash;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_oauth2_limit_ctx_t    lctx, *ctx;
    ngx_http_oauth2_limit_node_t  *ln;

    if (zone == NULL || key->len == 0 || key->len > 255) {
        return;
    }

    ctx = &lctx;
    ngx_http_oauth2_limit_ctx(zone, ctx);
    hash = ngx_crc32_short(key->data, key->len);
    now = ngx_time();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_oauth2_limit_lookup(ctx, key, hash);

    if (ln) {
        ngx_queue_remove(&ln->queue);

        if (now - ln->start >= window) {
            ln->start = now;
            ln->count = 0;
        }

        ln->count++;
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

        goto done;
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
        goto done;
    }

    node->key = hash;

    ln = (ngx_http_oauth2_limit_node_t *) &node->color;
    ln->len = (u_char) key->len;
    ln->start = now;
    ln->count = 1;
    ngx_memcpy(ln->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}
