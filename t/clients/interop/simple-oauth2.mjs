// simple-oauth2 (npm) against the module, each flow with the library's
// own grant classes and AccessToken methods (t/interop.t).
import { AuthorizationCode, ClientCredentials, ResourceOwnerPassword }
  from 'simple-oauth2';
import { active, errorCode, pkce, readConfig, resource, runFlows, userAgent }
  from './common.mjs';

const cfg = await readConfig();
const apps = cfg.apps['simple-oauth2'];

// the authorization paths only for AuthorizationCode: the other grant
// classes refuse them
const config = (app, secret) => ({
  client: { id: app.client_id, secret: secret ?? app.client_secret },
  auth: {
    tokenHost: cfg.base,
    tokenPath: '/o/token/',
    revokePath: '/o/revoke_token/',
    ...(app.redirect_uri ? { authorizeHost: cfg.base,
      authorizePath: '/o/authorize/' } : {}),
  },
});

let codeToken;  // the code flow's AccessToken, refreshed and revoked later
let code;       // its code, replayed

await runFlows('simple-oauth2', [
  ['client_credentials', async () => {
    const at = await new ClientCredentials(config(apps.cc))
      .getToken({ scope: 'read' });
    return { token: !!at.token.access_token,
      resource: await resource(cfg, at.token.access_token) };
  }],
  ['client_credentials_wrong_secret', async () => {
    try {
      await new ClientCredentials(config(apps.cc, 'wrong'))
        .getToken({ scope: 'read' });
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['password', async () => {
    const at = await new ResourceOwnerPassword(config(apps.pw)).getToken({
      username: cfg.username, password: cfg.password, scope: 'read' });
    return { token: !!at.token.access_token, refresh: !!at.token.refresh_token,
      resource: await resource(cfg, at.token.access_token) };
  }],
  ['code_pkce', async () => {
    const client = new AuthorizationCode(config(apps.web));
    const { verifier, challenge } = pkce();
    const url = client.authorizeURL({ redirect_uri: apps.web.redirect_uri,
      scope: 'read write', state: 'st-simple', code_challenge: challenge,
      code_challenge_method: 'S256' });
    const ua = await userAgent(cfg, url);
    const back = new URL(ua.location);
    code = { code: back.searchParams.get('code'),
      redirect_uri: apps.web.redirect_uri, code_verifier: verifier };
    codeToken = await client.getToken(code);
    return { consent: ua.consent,
      state_ok: back.searchParams.get('state') === 'st-simple',
      refresh: !!codeToken.token.refresh_token,
      resource: await resource(cfg, codeToken.token.access_token) };
  }],
  ['code_replay', async () => {
    try {
      await new AuthorizationCode(config(apps.web)).getToken(code);
      return { error: null };
    } catch (e) {
      return { error: errorCode(e) };
    }
  }],
  ['refresh', async () => {
    // the replay revoked the code's grant (R28): a fresh one to refresh
    const client = new AuthorizationCode(config(apps.web));
    const { verifier, challenge } = pkce();
    const ua = await userAgent(cfg, client.authorizeURL({
      redirect_uri: apps.web.redirect_uri, scope: 'read', state: 's2',
      code_challenge: challenge, code_challenge_method: 'S256' }));
    codeToken = await client.getToken({
      code: new URL(ua.location).searchParams.get('code'),
      redirect_uri: apps.web.redirect_uri, code_verifier: verifier });
    const old = codeToken.token.refresh_token;
    codeToken = await codeToken.refresh();
    return { rotated: !!codeToken.token.refresh_token
      && codeToken.token.refresh_token !== old,
      resource: await resource(cfg, codeToken.token.access_token) };
  }],
  ['revoke', async () => {
    const at = codeToken.token.access_token;
    await codeToken.revoke('access_token');
    return { error: null, resource_after: await resource(cfg, at),
      active_after: await active(cfg, apps.web, at) };
  }],
  ['revoke_all', async () => {
    const rt = codeToken.token.refresh_token;
    await codeToken.revokeAll();
    return { error: null, active_after: await active(cfg, apps.web, rt) };
  }],
]);
