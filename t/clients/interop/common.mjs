// What the interop scripts share (t/interop.t): the configuration on
// stdin, one JSON line per flow on stdout, and a user agent that drives
// the module's real login and consent pages over HTTP.

import { createHash, randomBytes } from 'node:crypto';

export async function readConfig() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

// runs each [name, fn] in turn; fn returns the observations the .t
// asserts; an exception it did not expect becomes {exception: ...}
export async function runFlows(lib, flows) {
  for (const [flow, fn] of flows) {
    let out;
    try {
      out = await fn();
    } catch (e) {
      out = { exception: `${e?.name}: ${e?.message}`, error: errorCode(e) };
    }
    process.stdout.write(`result ${JSON.stringify({ lib, flow, ...out })}\n`);
  }
  process.stdout.write('done\n');
}

// the OAuth error code an exception of any of the libraries carries
export function errorCode(e) {
  return e?.oauth2Code ?? e?.error ?? e?.data?.payload?.error
    ?? e?.cause?.error ?? null;
}

// the status a library's thrown error carries
export function errorStatus(e) {
  return e?.httpCode ?? e?.status ?? e?.response?.status
    ?? e?.output?.statusCode ?? null;
}

export function pkce() {
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// GET with the bearer token at the auth_oauth2 location: the status
export async function resource(cfg, token) {
  const r = await fetch(`${cfg.base}/api/v1/`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  await r.arrayBuffer();
  return r.status;
}

// introspection by hand, as the token's own client: active or not
export async function active(cfg, app, token) {
  const r = await fetch(`${cfg.base}/o/introspect/`, {
    method: 'POST',
    headers: {
      Authorization: 'Basic ' + Buffer.from(
        `${app.client_id}:${app.client_secret}`).toString('base64'),
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return (await r.json()).active;
}

function fields(page) {
  const out = {};
  for (const m of page.matchAll(/<input\b[^>]*>/gi)) {
    const name = /\bname="([^"]*)"/i.exec(m[0]);
    const value = /\bvalue="([^"]*)"/i.exec(m[0]);
    if (name) out[name[1]] = unescape(value ? value[1] : '');
  }
  const h1 = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(page);
  return { fields: out, h1: h1 ? unescape(h1[1].replace(/<[^>]*>/g, '')).trim() : '' };
}

function unescape(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// What a user does in a browser: sign in, then Authorize.  Returns the
// consent page's title (null when the user's consent was remembered and
// no page was shown) and the Location back to the redirect_uri.
// A browser: GET, or POST a form, without following redirects, keeping
// the cookies it is given (an empty value forgets one).  jar is its
// cookies, to look at.
export function browser() {
  const jar = new Map();
  const go = async (u, form) => {
    const headers = {
      Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
    };
    let body;
    if (form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form);
    }
    const r = await fetch(u, { method: form ? 'POST' : 'GET', headers, body,
      redirect: 'manual' });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      const [k, v] = [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
      if (v === '') jar.delete(k); else jar.set(k, v);
    }
    return { status: r.status, location: r.headers.get('location'),
      text: await r.text() };
  };
  return { go, jar };
}

export async function userAgent(cfg, url) {
  const { go } = browser();
  let r = await go(url);
  const login = fields(r.text);
  if (r.status !== 200 || !login.fields.csrf_token) {
    throw new Error(`no login page: ${r.status} ${r.text.slice(0, 200)}`);
  }
  r = await go(url, { action: 'login', csrf_token: login.fields.csrf_token,
    username: cfg.username, password: cfg.password });
  if (r.status !== 303) throw new Error(`login failed: ${r.status}`);
  const consentUrl = new URL(r.location, url).href;
  r = await go(consentUrl);
  if (r.status === 303 && /[?&]code=/.test(r.location ?? '')) {
    return { consent: null, location: r.location };
  }
  const consent = fields(r.text);
  if (r.status !== 200 || !consent.fields.csrf_token) {
    throw new Error(`no consent page: ${r.status} ${r.text.slice(0, 200)}`);
  }
  r = await go(consentUrl, { action: 'allow',
    csrf_token: consent.fields.csrf_token });
  if (r.status !== 303) throw new Error(`consent failed: ${r.status}`);
  return { consent: consent.h1, location: r.location };
}
