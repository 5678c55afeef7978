// openid-client (npm) as an OpenID Connect relying party uses it: the
// configuration from /.well-known/openid-configuration (its default
// discovery), the code flow with PKCE and a nonce, the id_token checked
// by the library (signature against the JWKS, iss, aud, exp, nonce,
// auth_time with max_age), userinfo, prompt=none, max_age, refresh and
// RP-initiated logout.  The browser is a cookie jar over fetch that
// signs in and consents on the module's real pages.  t/oidc.t.
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { browser, errorCode, pkce, readConfig, runFlows } from './common.mjs';

const cfg = await readConfig();
const app = cfg.app;

const config = await client.discovery(new URL(cfg.issuer), app.client_id,
  undefined, client.ClientSecretBasic(app.client_secret),
  { execute: [client.allowInsecureRequests] });
// verify the id_token's signature too, with the JWKS of the metadata
client.enableNonRepudiationChecks(config);

// One browser: its cookies outlive a flow, as a user's session does.
const { go, jar } = browser();

const field = (page, name) =>
  new RegExp(`name="${name}" value="([^"]*)"`).exec(page)?.[1];

// Follows the authorization request as a user would: signs in if asked,
// allows if asked.  What the user saw, and where the browser was sent.
async function browse(url) {
  const seen = [];
  let r = await go(url);
  for (let i = 0; i < 4 && r.status === 200; i++) {
    const csrf = field(r.text, 'csrf_token');
    if (/<h1>Sign in/.test(r.text)) {
      seen.push('login');
      r = await go(url, { action: 'login', csrf_token: csrf,
        username: cfg.username, password: cfg.password });
      // back to the request, without the prompt=login or max_age the
      // sign-in just met: the consent form posts there
      if (r.status !== 303) throw new Error(`sign-in failed: ${r.status}`);
      url = new URL(r.location, url).href;
      r = await go(url);
    } else if (/<h1>Authorize/.test(r.text)) {
      seen.push('consent');
      r = await go(url, { action: 'allow', csrf_token: csrf });
    } else {
      break;
    }
  }
  if (r.status !== 303) throw new Error(`no redirect: ${r.status} ${r.text.slice(0, 200)}`);
  return { seen, location: r.location };
}

function atHash(token) {
  return createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url');
}

async function codeFlow(params = {}, check = {}) {
  const { verifier, challenge } = pkce();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: app.redirect_uri,
    scope: 'openid profile email', nonce, state, code_challenge: challenge,
    code_challenge_method: 'S256', ...params });
  const ua = await browse(url.href);
  const tokens = await client.authorizationCodeGrant(config, new URL(ua.location),
    { pkceCodeVerifier: verifier, expectedState: state,
      expectedNonce: check.nonce ?? nonce, maxAge: check.maxAge });
  return { ua, tokens, nonce };
}

let first;
let latest;

await runFlows('openid-client', [
  ['discovery', async () => {
    const m = config.serverMetadata();
    return { issuer: m.issuer, userinfo: m.userinfo_endpoint,
      end_session: m.end_session_endpoint, jwks_uri: m.jwks_uri,
      algs: m.id_token_signing_alg_values_supported,
      scopes: m.scopes_supported, subject_types: m.subject_types_supported };
  }],
  ['code_flow', async () => {
    first = await codeFlow();
    const c = first.tokens.claims();
    return { seen: first.ua.seen, sub: c.sub, aud: c.aud, iss: c.iss,
      nonce_echoed: c.nonce === first.nonce, auth_time: c.auth_time,
      at_hash_ok: c.at_hash === atHash(first.tokens.access_token),
      exp_after_iat: c.exp > c.iat, id_token: first.tokens.id_token,
      refresh: !!first.tokens.refresh_token };
  }],
  ['userinfo', async () => {
    const u = await client.fetchUserInfo(config, first.tokens.access_token,
      first.tokens.claims().sub);
    return { sub: u.sub, preferred_username: u.preferred_username, email: u.email,
      given_name: u.given_name, family_name: u.family_name };
  }],
  ['userinfo_wrong_subject', async () => {
    try {
      await client.fetchUserInfo(config, first.tokens.access_token, 'someone-else');
      return { error: null };
    } catch (e) {
      return { thrown: e.name, code: e.code };
    }
  }],
  ['nonce_mismatch', async () => {
    try {
      await codeFlow({}, { nonce: client.randomNonce() });
      return { error: null };
    } catch (e) {
      return { thrown: e.name, message: e.message };
    }
  }],
  ['remembered_consent', async () => {
    const f = await codeFlow();
    return { seen: f.ua.seen, sub: f.tokens.claims().sub };
  }],
  ['prompt_none', async () => {
    const f = await codeFlow({ prompt: 'none' });
    return { seen: f.ua.seen, sub: f.tokens.claims().sub };
  }],
  ['prompt_login', async () => {
    const f = await codeFlow({ prompt: 'login' });
    return { seen: f.ua.seen, auth_time: f.tokens.claims().auth_time };
  }],
  ['max_age', async () => {
    await new Promise((r) => setTimeout(r, 2100));
    const f = await codeFlow({ max_age: '1' }, { maxAge: 1 });
    latest = f;  // the browser's latest sign-in, which the RP now holds
    const c = f.tokens.claims();
    return { seen: f.ua.seen, fresh: Math.floor(Date.now() / 1000) - c.auth_time <= 2 };
  }],
  ['refresh', async () => {
    const t = await client.refreshTokenGrant(config, first.tokens.refresh_token);
    return { access: !!t.access_token, refresh: !!t.refresh_token };
  }],
  ['end_session_earlier_sign_in', async () => {
    // an id_token of an earlier sign-in is not of the current session:
    // the OP asks (RP-Initiated Logout 2)
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: first.tokens.id_token,
      post_logout_redirect_uri: app.post_logout_redirect_uri, state: 'bye' });
    const r = await go(url.href);
    return { status: r.status, asks: /Sign out\?/.test(r.text ?? ''),
      session_cookie: jar.has('oauth2_session') };
  }],
  ['end_session', async () => {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: latest.tokens.id_token,
      post_logout_redirect_uri: app.post_logout_redirect_uri, state: 'bye' });
    const r = await go(url.href);
    const back = r.location ? new URL(r.location) : null;
    return { status: r.status, to: back ? back.origin + back.pathname : null,
      state: back?.searchParams.get('state'), session_cookie: jar.has('oauth2_session') };
  }],
  ['after_logout_prompt_none', async () => {
    try {
      await codeFlow({ prompt: 'none' });
      return { error: null };
    } catch (e) {
      return { error: errorCode(e), thrown: e.name };
    }
  }],
]);
