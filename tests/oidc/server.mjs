// A real, independently written OpenID Connect server for freshd's invariant
// tests: panva's certified `oidc-provider`, with refresh-token rotation and
// its reuse detection (a consumed refresh token presented again revokes the
// whole grant), short access tokens, revocation, introspection and the
// built-in login and consent pages (devInteractions) that a scripted HTTP
// client can drive.
//
// Environment:
//   PORT             port on 127.0.0.1 (0 or unset: any free one)
//   OIDC_STATE_DIR   directory for `store.json` (grants, tokens) and
//                    `journal.jsonl`, so that a restart keeps both
//   OIDC_CLIENTS     JSON file: an array of client metadata (default below)
//   OIDC_AT_TTL      access-token lifetime in seconds (default 10)
//
// The first line on stdout is `listening http://127.0.0.1:PORT`; the issuer is
// that URL. Test-only endpoints, under /test/:
//   GET  /test/journal   every token-endpoint request (JSON array), in the
//        order answered: t and t_done (ms since the epoch: arrived, answer
//        sent; a held answer is journaled when it is sent),
//        grant_type, client_id, presented (SHA-256 hex of the refresh token
//        presented), issued_refresh, issued_access (SHA-256 hex), expires_in,
//        access_expires_at (ms), grant, outcome ("ok" or the OAuth error
//        code), error_description, status
//   GET  /test/current   { grants: { GRANT_ID: { refresh: SHA-256 hex of the
//        newest refresh token, t } } } for grants that are not revoked, and
//        inflight: token requests being answered (or held) now
//   POST /test/delay?before_ms=N&after_ms=N&count=N   hold the next `count`
//        token requests N ms before (not yet processed) and/or after the
//        provider has answered (rotation done, answer not yet sent); a
//        request whose client is gone after `before_ms` is not processed
//        (journaled as outcome "client_gone")
//   POST /test/revoke?grant=ID   revoke one grant (all grants without ?grant)
//   POST /test/stop      answer, then exit 0
// Secrets are never printed: the journal holds only hashes.

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import Provider from 'oidc-provider';

const sha256 = (value) => (value ? createHash('sha256').update(String(value)).digest('hex') : null);

const stateDir = process.env.OIDC_STATE_DIR || null;
if (stateDir) fs.mkdirSync(stateDir, { recursive: true });
const storeFile = stateDir ? path.join(stateDir, 'store.json') : null;
const journalFile = stateDir ? path.join(stateDir, 'journal.jsonl') : null;
const accessTtl = Number(process.env.OIDC_AT_TTL || 10);

// ---- storage: one map for every model, written through to store.json ----

const storage = new Map(); // key -> { payload, expiresAt (ms) | null }
if (storeFile && fs.existsSync(storeFile)) {
  for (const [key, value] of JSON.parse(fs.readFileSync(storeFile, 'utf8'))) storage.set(key, value);
}
function persist() {
  if (!storeFile) return;
  const tmp = `${storeFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify([...storage]));
  fs.renameSync(tmp, storeFile);
}
function live(key) {
  const entry = storage.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
    storage.delete(key);
    return undefined;
  }
  return entry.payload;
}

class FileAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
    storage.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const gkey = `grant:${payload.grantId}`;
      const members = storage.get(gkey)?.payload ?? [];
      members.push(this.key(id));
      storage.set(gkey, { payload: members, expiresAt: null });
    }
    if (payload.uid) storage.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) storage.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
    persist();
  }

  async find(id) {
    return live(this.key(id));
  }

  async findByUid(uid) {
    const id = live(`sessionUid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = live(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const entry = storage.get(this.key(id));
    if (entry) {
      entry.payload.consumed = Math.floor(Date.now() / 1000);
      persist();
    }
  }

  async destroy(id) {
    storage.delete(this.key(id));
    persist();
  }

  async revokeByGrantId(grantId) {
    const gkey = `grant:${grantId}`;
    for (const key of storage.get(gkey)?.payload ?? []) storage.delete(key);
    storage.delete(gkey);
    revokedGrants.add(grantId);
    persist();
  }
}

// ---- the journal of token-endpoint requests ----

const journal = [];
const revokedGrants = new Set();
if (journalFile && fs.existsSync(journalFile)) {
  for (const line of fs.readFileSync(journalFile, 'utf8').split('\n')) {
    if (line.trim()) journal.push(JSON.parse(line));
  }
}
function record(entry) {
  journal.push(entry);
  if (journalFile) fs.appendFileSync(journalFile, `${JSON.stringify(entry)}\n`);
}
function current() {
  const grants = {};
  for (const entry of journal) {
    if (entry.grant && entry.issued_refresh) grants[entry.grant] = { refresh: entry.issued_refresh, t: entry.t };
  }
  for (const [grant] of Object.entries(grants)) {
    if (!live(`Grant:${grant}`)) delete grants[grant];
  }
  return { grants, inflight };
}

// ---- clients ----

const defaultClients = [
  {
    client_id: 'freshd-public',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
  {
    client_id: 'freshd-basic',
    client_secret: 'se+cr%et: with a space',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
  },
  {
    client_id: 'freshd-post',
    client_secret: 'po+st%se:cret with a space',
    token_endpoint_auth_method: 'client_secret_post',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
  },
];
const clients = process.env.OIDC_CLIENTS
  ? JSON.parse(fs.readFileSync(process.env.OIDC_CLIENTS, 'utf8'))
  : defaultClients;

// ---- the provider ----

const port = Number(process.env.PORT || 0);
// The issuer needs the port before listening: take a free one first when
// none is given.
async function pickPort() {
  if (port) return port;
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const chosen = probe.address().port;
      probe.close(() => resolve(chosen));
    });
  });
}
const chosenPort = await pickPort();
const issuer = `http://127.0.0.1:${chosenPort}`;

const provider = new Provider(issuer, {
  adapter: FileAdapter,
  clients,
  cookies: { keys: [process.env.OIDC_COOKIE_KEY || randomBytes(16).toString('hex')] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ['openid', 'offline_access'],
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    clientCredentials: { enabled: true },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    AuthorizationCode: 60,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  pkce: { required: () => true },
});

let delay = { before: 0, after: 0, count: 0 };
let inflight = 0;

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/test/')) {
    await testEndpoint(ctx);
    return;
  }
  if (ctx.path !== '/token' || ctx.method !== 'POST') {
    await next();
    return;
  }
  inflight += 1;
  try {
    await journaled(ctx, next);
  } finally {
    inflight -= 1;
  }
});

async function journaled(ctx, next) {
  let held = null;
  if (delay.count > 0) {
    delay.count -= 1;
    held = { ...delay };
  }
  let gone = false;
  ctx.res.on('close', () => { gone = true; });
  if (held?.before) {
    await sleep(held.before);
    // A client that died while its request was held: the request never
    // reached the provider (nothing rotated).
    if (gone || ctx.req.socket.destroyed) {
      record({
        t: Date.now(), t_done: Date.now(), grant_type: null, client_id: null, presented: null,
        issued_refresh: null, issued_access: null, expires_in: null, access_expires_at: null,
        grant: null, outcome: 'client_gone', error_description: null, status: 0,
      });
      return;
    }
  }
  const t = Date.now();
  await next();
  const params = ctx.oidc?.params ?? {};
  const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
  const ok = ctx.status === 200 && !!body.access_token;
  const entities = ctx.oidc?.entities ?? {};
  const grant = entities.RefreshToken?.grantId
    ?? entities.AuthorizationCode?.grantId
    ?? entities.Grant?.jti
    ?? null;
  // The answer is held here (rotation done, not yet sent) when asked to.
  if (held?.after) await sleep(held.after);
  record({
    t,
    t_done: Date.now(),
    grant_type: params.grant_type ?? null,
    client_id: entities.Client?.clientId ?? params.client_id ?? null,
    presented: sha256(params.refresh_token),
    issued_refresh: ok ? sha256(body.refresh_token) : null,
    issued_access: ok ? sha256(body.access_token) : null,
    expires_in: ok ? body.expires_in : null,
    access_expires_at: ok && typeof body.expires_in === 'number' ? t + body.expires_in * 1000 : null,
    grant,
    outcome: ok ? 'ok' : (body.error ?? `http_${ctx.status}`),
    error_description: ok ? null : (ctx.state.serverError ?? body.error_description ?? null),
    status: ctx.status,
  });
}

async function testEndpoint(ctx) {
  const q = ctx.query;
  ctx.type = 'json';
  switch (`${ctx.method} ${ctx.path}`) {
    case 'GET /test/journal':
      ctx.body = journal;
      return;
    case 'GET /test/current':
      ctx.body = current();
      return;
    case 'POST /test/delay':
      delay = {
        before: Number(q.before_ms || 0),
        after: Number(q.after_ms || 0),
        count: Number(q.count || 1),
      };
      ctx.body = { delay };
      return;
    case 'POST /test/revoke': {
      const grants = q.grant ? [q.grant] : Object.keys(current().grants);
      for (const grant of grants) {
        await Promise.all([
          provider.AccessToken.revokeByGrantId(grant),
          provider.RefreshToken.revokeByGrantId(grant),
          provider.AuthorizationCode.revokeByGrantId(grant),
          provider.Grant.adapter.destroy(grant),
        ]);
      }
      ctx.body = { revoked: grants };
      return;
    }
    case 'POST /test/stop':
      ctx.body = { stopping: true };
      setImmediate(() => process.exit(0));
      return;
    default:
      ctx.status = 404;
      ctx.body = { error: 'no such test endpoint' };
  }
}

provider.on('server_error', (ctx, err) => {
  console.error('server_error', err.message);
  ctx.state.serverError = err.message;
});

const server = provider.listen(chosenPort, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
server.on('error', (err) => {
  console.error(`cannot listen on ${issuer}: ${err.message}`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
