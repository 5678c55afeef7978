// openid-client (npm) against the module: only its plain OAuth 2
// functions (no openid scope, no id_token, no userinfo; the configuration
// from RFC 8414 discovery with algorithm oauth2, never
// openid-configuration).  t/interop.t.
import * as client from 'openid-client';
import { active, errorCode, pkce, readConfig, resource, runFlows, userAgent }
  from './common.mjs';

const cfg = await readConfig();
const apps = cfg.apps['openid-client'];
const server = new URL(cfg.base);

const configs = new Map();
async function config(app, secret) {
  const key = `${app.client_id}:${secret ?? ''}`;
  if (!configs.has(key)) {
    configs.set(key, await client.discovery(server, app.client_id,
      undefined, client.ClientSecretBasic(secret ?? app.client_secret),
      { algorithm: 'oauth2', execute: [client.allowInsecureRequests] }));
  }
  return configs.get(key);
}

async function codeFlow(app, state) {
  const c = await config(app);
  const { verifier, challenge } = pkce();
  const url = client.buildAuthorizationUrl(c, { redirect_uri: app.redirect_uri,
    scope: 'read write', state, code_challenge: challenge,
    code_challenge_method: 'S256' });
  const ua = await userAgent(cfg, url.href);
  const token = await client.authorizationCodeGrant(c, new URL(ua.location),
    { pkceCodeVerifier: verifier, expectedState: state });
  return { c, ua, verifier, token };
}

let flow;

await runFlows('openid-client', [
  ['discovery', async () => {
    const m = (await config(apps.cc)).serverMetadata();
    return { token_endpoint: m.token_endpoint, issuer: m.issuer };
  }],
  ['client_credentials', async () => {
    const c = await config(apps.cc);
    const t = await client.clientCredentialsGrant(c, { scope: 'read' });
    const api = await client.fetchProtectedResource(c, t.access_token,
      new URL(`${cfg.base}/api/v1/`), 'GET');
    return { token: !!t.access_token, resource: api.status };
  }],
  ['client_credentials_wrong_secret', async () => {
    try {
      await client.clientCredentialsGrant(await config(apps.cc, 'wrong'),
        { scope: 'read' });
      return { error: null };
    } catch (e) {
      // as oauth4webapi, which it is built on: a 401 with a challenge
      // throws WWWAuthenticateChallengeError, the body still readable
      const body = e.response ? await e.response.json() : {};
      return { error: errorCode(e) ?? body.error, thrown: e.name,
        status: e.status };
    }
  }],
  ['password', async () => {
    const t = await client.genericGrantRequest(await config(apps.pw),
      'password', { username: cfg.username, password: cfg.password,
        scope: 'read' });
    return { token: !!t.access_token, refresh: !!t.refresh_token,
      resource: await resource(cfg, t.access_token) };
  }],
  ['code_pkce', async () => {
    flow = await codeFlow(apps.web, 'st-openid-client');
    return { consent: flow.ua.consent, state_ok: true,
      refresh: !!flow.token.refresh_token,
      resource: await resource(cfg, flow.token.access_token) };
  }],
  ['code_replay', async () => {
    try {
      await client.authorizationCodeGrant(flow.c, new URL(flow.ua.location),
        { pkceCodeVerifier: flow.verifier, expectedState: 'st-openid-client' });
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['refresh', async () => {
    flow = await codeFlow(apps.web, 'st-openid-client-2');
    const old = flow.token.refresh_token;
    flow.token = await client.refreshTokenGrant(flow.c, old);
    return { rotated: !!flow.token.refresh_token && flow.token.refresh_token !== old,
      resource: await resource(cfg, flow.token.access_token) };
  }],
  ['introspect', async () => {
    const r = await client.tokenIntrospection(flow.c, flow.token.access_token);
    return { active: r.active, client_id_ok: r.client_id === apps.web.client_id };
  }],
  ['revoke', async () => {
    const at = flow.token.access_token;
    await client.tokenRevocation(flow.c, at);
    return { error: null, resource_after: await resource(cfg, at),
      active_after: await active(cfg, apps.web, at) };
  }],
]);
