// A real OpenID provider for Berth's single sign-on tests: panva's oidc-provider (an OpenID
// Certified implementation) with its development sign-in pages, configured from a JSON file:
//
//   { "issuer_host": "localhost",
//     "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//     "accounts": { "alice": { "groups": ["platform-admins"] } } }
//
// Any login name signs in at its sign-in page (the password is not checked); an account's
// claims are `preferred_username`, `email` and `groups` (from the file, `[]` when unknown).
// Consent is given at once: Berth is a first-party client.
//
// Two control routes let a test change the provider while it runs (they are the test's own,
// under /__test/, not OpenID endpoints):
//   POST /__test/groups/{account}  body: JSON array      the account's groups from now on
//   POST /__test/id-token-audience body: JSON string|null  ID tokens are issued for that other
//                                                         (registered) client instead, signed as usual
//
// Listens on 127.0.0.1 and prints `{"issuer": "http://HOST:PORT"}` on one line once it does.
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const groups = new Map(Object.entries(config.accounts || {}).map(([id, a]) => [id, a.groups || []]));
let idTokenAudience = null;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
// The issuer may name the loopback by another host name (`localhost`), so a browser sees the
// provider and a Berth on 127.0.0.1 as different sites, as they are in production.
const issuer = `http://${config.issuer_host || '127.0.0.1'}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  pkce: { required: () => true },
  cookies: { keys: ['berth-test-oidc-provider-cookie-key'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`, groups: groups.get(id) || [] };
      },
    };
  },
  // First-party: every scope and claim asked for is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
});

async function body(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path.startsWith('/__test/groups/')) {
    groups.set(decodeURIComponent(ctx.path.slice('/__test/groups/'.length)), await body(ctx));
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/__test/id-token-audience') {
    idTokenAudience = await body(ctx);
    ctx.status = 204;
    return;
  }
  await next();
  // An ID token for another client: the same subject and nonce, signed by this provider with
  // its own keys, but issued to (and for the audience of) the other client.
  if (ctx.path === '/token' && idTokenAudience && ctx.body && ctx.body.id_token) {
    const claims = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url').toString('utf8'));
    const client = await provider.Client.find(idTokenAudience);
    const token = new provider.IdToken({ sub: claims.sub }, { ctx, client });
    token.scope = 'openid';
    for (const claim of ['nonce', 'at_hash', 'sid']) {
      if (claims[claim]) token.set(claim, claims[claim]);
    }
    ctx.body = { ...ctx.body, id_token: await token.issue({ use: 'idtoken' }) };
  }
});

server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));
