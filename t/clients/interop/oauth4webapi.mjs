// oauth4webapi (npm) against the module: the authorization server from
// RFC 8414 discovery (discoveryRequest, algorithm oauth2), every flow
// with the library's request and process functions, which check each
// answer strictly (t/interop.t).  Plain http on loopback needs its
// allowInsecureRequests option.
import * as oauth from 'oauth4webapi';
import { active, errorCode, pkce, readConfig, resource, runFlows, userAgent }
  from './common.mjs';

const cfg = await readConfig();
const apps = cfg.apps['oauth4webapi'];
const opts = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(cfg.base);
let as;  // the discovered authorization server

const client = (app) => ({ client_id: app.client_id });
const auth = (app, secret) => oauth.ClientSecretBasic(secret ?? app.client_secret);

async function codeFlow(app, state) {
  const { verifier, challenge } = pkce();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({ response_type: 'code',
    client_id: app.client_id, redirect_uri: app.redirect_uri,
    scope: 'read write', state, code_challenge: challenge,
    code_challenge_method: 'S256' });
  const ua = await userAgent(cfg, url.href);
  // checks state, and iss as the metadata promises (RFC 9207)
  const params = oauth.validateAuthResponse(as, client(app),
    new URL(ua.location), state);
  const r = await oauth.authorizationCodeGrantRequest(as, client(app),
    auth(app), params, app.redirect_uri, verifier, opts);
  const token = await oauth.processAuthorizationCodeResponse(as, client(app), r);
  return { ua, params, verifier, token };
}

let flow;

await runFlows('oauth4webapi', [
  ['discovery', async () => {
    as = await oauth.processDiscoveryResponse(issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...opts }));
    return { token_endpoint: as.token_endpoint, issuer: as.issuer };
  }],
  ['client_credentials', async () => {
    const t = await oauth.processClientCredentialsResponse(as, client(apps.cc),
      await oauth.clientCredentialsGrantRequest(as, client(apps.cc),
        auth(apps.cc), { scope: 'read' }, opts));
    const api = await oauth.protectedResourceRequest(t.access_token, 'GET',
      new URL(`${cfg.base}/api/v1/`), undefined, undefined, opts);
    return { token: !!t.access_token, resource: api.status };
  }],
  ['client_credentials_wrong_secret', async () => {
    try {
      await oauth.processClientCredentialsResponse(as, client(apps.cc),
        await oauth.clientCredentialsGrantRequest(as, client(apps.cc),
          auth(apps.cc, 'wrong'), { scope: 'read' }, opts));
      return { error: null };
    } catch (e) {
      // the 401's WWW-Authenticate: Basic (RFC 6749 5.2) makes the
      // library throw its WWWAuthenticateChallengeError, which keeps the
      // response whose body names the error
      const body = e.response ? await e.response.json() : {};
      return { error: errorCode(e) ?? body.error, thrown: e.name,
        status: e.status };
    }
  }],
  ['password', async () => {
    const t = await oauth.processGenericTokenEndpointResponse(as, client(apps.pw),
      await oauth.genericTokenEndpointRequest(as, client(apps.pw), auth(apps.pw),
        'password', { username: cfg.username, password: cfg.password,
          scope: 'read' }, opts));
    return { token: !!t.access_token, refresh: !!t.refresh_token,
      resource: await resource(cfg, t.access_token) };
  }],
  ['code_pkce', async () => {
    flow = await codeFlow(apps.web, 'st-oauth4webapi');
    return { consent: flow.ua.consent, state_ok: true,
      refresh: !!flow.token.refresh_token,
      resource: await resource(cfg, flow.token.access_token) };
  }],
  ['code_replay', async () => {
    try {
      await oauth.processAuthorizationCodeResponse(as, client(apps.web),
        await oauth.authorizationCodeGrantRequest(as, client(apps.web),
          auth(apps.web), flow.params, apps.web.redirect_uri, flow.verifier,
          opts));
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['refresh', async () => {
    flow = await codeFlow(apps.web, 'st-oauth4webapi-2');
    const old = flow.token.refresh_token;
    flow.token = await oauth.processRefreshTokenResponse(as, client(apps.web),
      await oauth.refreshTokenGrantRequest(as, client(apps.web), auth(apps.web),
        old, opts));
    return { rotated: !!flow.token.refresh_token && flow.token.refresh_token !== old,
      resource: await resource(cfg, flow.token.access_token) };
  }],
  ['introspect', async () => {
    const r = await oauth.processIntrospectionResponse(as, client(apps.web),
      await oauth.introspectionRequest(as, client(apps.web), auth(apps.web),
        flow.token.access_token, opts));
    return { active: r.active, client_id_ok: r.client_id === apps.web.client_id };
  }],
  ['revoke', async () => {
    const at = flow.token.access_token;
    await oauth.processRevocationResponse(await oauth.revocationRequest(as,
      client(apps.web), auth(apps.web), at, opts));
    return { error: null, resource_after: await resource(cfg, at),
      active_after: await active(cfg, apps.web, at) };
  }],
]);
