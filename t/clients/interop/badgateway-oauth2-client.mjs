// @badgateway/oauth2-client (npm) against the module: the client finds
// every endpoint by RFC 8414 discovery from the server's URL, as its README
// shows, and runs each flow with its own methods (t/interop.t).
import { OAuth2Client, generateCodeVerifier } from '@badgateway/oauth2-client';
import { active, errorCode, readConfig, resource, runFlows, userAgent }
  from './common.mjs';

const cfg = await readConfig();
const apps = cfg.apps['@badgateway/oauth2-client'];

const client = (app, secret) => new OAuth2Client({
  server: `${cfg.base}/`,
  clientId: app.client_id,
  clientSecret: secret ?? app.client_secret,
  authenticationMethod: 'client_secret_basic',
});

// a code flow through the login and consent pages: [consent, token, ...]
async function codeFlow(app, state) {
  const c = client(app);
  const codeVerifier = await generateCodeVerifier();
  const url = await c.authorizationCode.getAuthorizeUri({
    redirectUri: app.redirect_uri, state, codeVerifier,
    scope: ['read', 'write'] });
  const ua = await userAgent(cfg, url);
  const token = await c.authorizationCode.getTokenFromCodeRedirect(
    ua.location, { redirectUri: app.redirect_uri, state, codeVerifier });
  return { c, ua, token, codeVerifier };
}

let flow;  // the code flow's client, token, and its code for the replay
let code;

await runFlows('@badgateway/oauth2-client', [
  ['discovery', async () => {
    const c = client(apps.cc);
    return { token_endpoint: await c.getEndpoint('tokenEndpoint'),
      revocation_endpoint: await c.getEndpoint('revocationEndpoint'),
      introspection_endpoint: await c.getEndpoint('introspectionEndpoint') };
  }],
  ['client_credentials', async () => {
    const t = await client(apps.cc).clientCredentials({ scope: ['read'] });
    return { token: !!t.accessToken, resource: await resource(cfg, t.accessToken) };
  }],
  ['client_credentials_wrong_secret', async () => {
    try {
      await client(apps.cc, 'wrong').clientCredentials({ scope: ['read'] });
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['password', async () => {
    const t = await client(apps.pw).password({ username: cfg.username,
      password: cfg.password, scope: ['read'] });
    return { token: !!t.accessToken, refresh: !!t.refreshToken,
      resource: await resource(cfg, t.accessToken) };
  }],
  ['code_pkce', async () => {
    flow = await codeFlow(apps.web, 'st-badgateway');
    code = new URL(flow.ua.location).searchParams.get('code');
    return { consent: flow.ua.consent, state_ok: true,
      refresh: !!flow.token.refreshToken,
      resource: await resource(cfg, flow.token.accessToken) };
  }],
  ['code_replay', async () => {
    try {
      await client(apps.web).authorizationCode.getToken({ code,
        redirectUri: apps.web.redirect_uri, codeVerifier: flow.codeVerifier });
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['refresh', async () => {
    flow = await codeFlow(apps.web, 'st-badgateway-2');
    const old = flow.token.refreshToken;
    flow.token = await flow.c.refreshToken(flow.token);
    return { rotated: !!flow.token.refreshToken && flow.token.refreshToken !== old,
      resource: await resource(cfg, flow.token.accessToken) };
  }],
  ['introspect', async () => {
    const r = await flow.c.introspect(flow.token);
    return { active: r.active, client_id_ok: r.client_id === apps.web.client_id };
  }],
  ['revoke', async () => {
    const at = flow.token.accessToken;
    await flow.c.revoke(flow.token, 'access_token');
    return { error: null, resource_after: await resource(cfg, at),
      active_after: await active(cfg, apps.web, at) };
  }],
]);
