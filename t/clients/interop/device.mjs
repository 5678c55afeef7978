// oauth4webapi (npm) as the device of RFC 8628's flow (t/device.t): it
// discovers the server (RFC 8414), asks the device authorization endpoint
// for codes, prints the user code for the test (which approves it at the
// verification page, as the user would), polls the token endpoint with
// the library's own processing (authorization_pending and slow_down are
// errors it throws; the interval is the one the server gave, raised by 5
// seconds on slow_down as RFC 8628 3.5 says) and uses the token at the
// protected location.
//
//   node device.mjs <base> <client_id>
// stdout: "user_code <code> <verification_uri_complete>", then
// "result <json>"
import * as oauth from 'oauth4webapi';

const [base, clientId] = process.argv.slice(2);
const opts = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(base);
const client = { client_id: clientId };
const auth = oauth.None();

const out = (line) => process.stdout.write(`${line}\n`);
let result = {};
try {
  const as = await oauth.processDiscoveryResponse(issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...opts }));
  const da = await oauth.processDeviceAuthorizationResponse(as, client,
    await oauth.deviceAuthorizationRequest(as, client, auth,
      new URLSearchParams({ scope: 'read' }), opts));
  out(`user_code ${da.user_code} ${da.verification_uri_complete}`);
  let interval = da.interval;
  const errors = [];
  let token;
  for (let i = 0; i < 40 && !token; i++) {
    await new Promise((r) => setTimeout(r, interval * 1000));
    try {
      token = await oauth.processDeviceCodeResponse(as, client,
        await oauth.deviceCodeGrantRequest(as, client, auth, da.device_code, opts));
    } catch (e) {
      const code = e?.error ?? e?.cause?.error;
      errors.push(code);
      if (code === 'slow_down') interval += 5;
      else if (code !== 'authorization_pending') throw e;
    }
  }
  const api = await oauth.protectedResourceRequest(token.access_token, 'GET',
    new URL(`${base}/protected/index.html`), undefined, undefined, opts);
  await api.arrayBuffer();
  result = {
    endpoint: as.device_authorization_endpoint,
    interval: da.interval,
    expires_in: da.expires_in,
    errors,
    token_type: token.token_type,
    refresh: !!token.refresh_token,
    resource: api.status,
  };
} catch (e) {
  result = { exception: `${e?.name}: ${e?.message}`, error: e?.error ?? e?.cause?.error };
}
out(`result ${JSON.stringify(result)}`);
