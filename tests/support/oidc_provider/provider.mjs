// A real OpenID provider (panva/oidc-provider) for the console's single sign-on tests.
//
// One confidential client (authorization code, PKCE S256 required), accounts read from JSON on
// every sign-in (so a test may change someone's claims between two logins), the library's own
// login and consent pages (devInteractions: any listed account id signs in, no password).
//
//   node provider.mjs --port 9000 --issuer http://127.0.0.1:9000 --client-id tonle-console \
//     --client-secret s3cret --redirect-uri http://127.0.0.1:8000/console/auth/callback \
//     --accounts-file accounts.json
//
// Every option also comes from the environment: OIDC_PORT, OIDC_ISSUER, OIDC_CLIENT_ID,
// OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (space-separated), OIDC_ACCOUNTS_FILE or OIDC_ACCOUNTS
// (the JSON itself).
//
// Accounts: {"<account id = sub>": {"preferred_username", "name", "email", "tonle_role",
// "tonle_ministry", ...}}. An account may carry "_id_token" to have the token endpoint hand the
// client a hostile ID token for it, so the client's checks meet real attacks:
//   "altered"        claims changed after signing (signature no longer matches)
//   "foreign-key"    signed by a key that is not in the provider's JWKS (same kid)
//   "wrong-audience" correctly signed, issued for another client
//   "wrong-nonce"    correctly signed, with a nonce the client never sent
//   "expired"        correctly signed, expired an hour ago

import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'accounts-file': { type: 'string' },
  },
});

const env = process.env;
const port = Number(args.port ?? env.OIDC_PORT ?? 9000);
const issuer = args.issuer ?? env.OIDC_ISSUER ?? `http://127.0.0.1:${port}`;
const clientId = args['client-id'] ?? env.OIDC_CLIENT_ID ?? 'tonle-console';
const clientSecret = args['client-secret'] ?? env.OIDC_CLIENT_SECRET;
const redirectUris = args['redirect-uri'] ?? (env.OIDC_REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean);
const accountsFile = args['accounts-file'] ?? env.OIDC_ACCOUNTS_FILE;

if (!clientSecret || redirectUris.length === 0 || !(accountsFile || env.OIDC_ACCOUNTS)) {
  console.error('provider.mjs: a client secret, at least one redirect URI and accounts (file or JSON) are required');
  process.exit(2);
}

function accounts() {
  const text = accountsFile ? readFileSync(accountsFile, 'utf8') : env.OIDC_ACCOUNTS;
  return JSON.parse(text);
}

// A fresh signing key per run: nothing long-lived to leak, and the client must fetch the JWKS.
const kid = randomBytes(8).toString('hex');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
const { privateKey: foreignKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'profile', 'email', 'tonle'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    tonle: ['tonle_role', 'tonle_ministry'],
  },
  // Put the scopes' claims in the ID token too, as most enterprise providers do; the client
  // also reads them from userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const entry = accounts()[id];
    if (!entry || typeof entry !== 'object') return undefined;
    const { _id_token: ignored, ...claims } = entry;
    return { accountId: id, async claims() { return { ...claims, sub: id }; } };
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);

const b64url = (value) => Buffer.from(value).toString('base64url');
const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

function signJwt(header, payload, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function forge(idToken, mode) {
  const [headerPart, payloadPart, signature] = idToken.split('.');
  const header = decodePart(headerPart);
  const payload = decodePart(payloadPart);
  const ownKey = createPrivateKey({ key: signingJwk, format: 'jwk' });
  switch (mode) {
    case 'altered':
      return `${headerPart}.${b64url(JSON.stringify({ ...payload, tonle_role: 'admin' }))}.${signature}`;
    case 'foreign-key':
      return signJwt(header, payload, foreignKey);
    case 'wrong-audience':
      return signJwt(header, { ...payload, aud: 'another-client', azp: 'another-client' }, ownKey);
    case 'wrong-nonce':
      return signJwt(header, { ...payload, nonce: randomBytes(16).toString('base64url') }, ownKey);
    case 'expired': {
      const now = Math.floor(Date.now() / 1000);
      return signJwt(header, { ...payload, iat: now - 7200, exp: now - 3600 }, ownKey);
    }
    default:
      return idToken;
  }
}

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const { sub } = decodePart(ctx.body.id_token.split('.')[1]);
  const mode = accounts()[sub]?._id_token;
  if (mode) ctx.body = { ...ctx.body, id_token: forge(ctx.body.id_token, mode) };
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}, client ${clientId}, redirect ${redirectUris.join(' ')}`);
});
