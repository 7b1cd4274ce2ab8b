// A real, independent OAuth2 / OpenID provider (oidc-provider) for the SMART authorizer tests.
// Usage: node server.mjs CONFIG.json   (written by tests/auth/oidc_fixture.py)
// Config: { port, fhirBaseUrl, providerJwks, backendJwks, backendRsaJwks, secrets: {id: secret} }
// Prints "listening <issuer>" when ready. Test-only helpers under /test/:
//   GET /test/stats -> counts of introspection and token requests by client.
// Optional "dual" (tests/oauth, the imaging server's own EHR leg), off unless given:
//   { clients: [oidc-provider client metadata...],   extra clients (the imaging server's EHR clients)
//     firstParty: [client_id...],     grants of these clients are implied (no consent step), so that
//                                     prompt=none succeeds whenever the user has a session
//     hintAnyAudience: true,          accept an id_token_hint issued to any registered client (the
//                                     app's id_token, forwarded by the imaging server's client)
//     interactiveLogin: true }        without login_hint, /interaction/:uid shows a login form
//                                     (account, "login" or "deny") instead of finishing at once
//   With "dual": scopes fhirUser, patient/Patient.rs|read; id_tokens carry fhirUser
//   ({fhirBaseUrl}/Patient/{account}); token responses carry "patient" (the account).
import fs from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const JWT_RESOURCE = 'urn:smart-imaging:jwt';
const RESOURCE_SCOPES = [
  'launch/patient', 'patient/ImagingStudy.rs', 'patient/ImagingStudy.read', 'patient/*.read',
  'patient/*.rs', 'patient/Observation.rs', 'patient/DiagnosticReport.read', 'user/*.rs',
  'system/Patient.read', 'system/Patient.rs',
];
const dual = config.dual || null;
if (dual) RESOURCE_SCOPES.push('patient/Patient.rs', 'patient/Patient.read');
// Optional, off unless given (tests/ig): extraScopes (e.g. system/ImagingStudy.rs), extraClients
// (oidc-provider client metadata), accounts: {accountId: {extra token claims}} (e.g. a proxy:
// {"patient": "maya", "fhirUser": "RelatedPerson/elena"}) instead of {patient: accountId}.
RESOURCE_SCOPES.push(...(config.extraScopes || []));
const accounts = config.accounts || {};
const OIDC_SCOPES = ['openid', 'offline_access', ...(dual ? ['fhirUser'] : [])];
const APP_SCOPE = ['openid', ...(dual ? ['fhirUser'] : []), ...RESOURCE_SCOPES].join(' ');
const appClient = (client_id) => ({
  client_id, token_endpoint_auth_method: 'none', grant_types: ['authorization_code'],
  response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'], scope: APP_SCOPE,
});
const backendClient = (client_id, jwks, alg) => ({
  client_id, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: alg,
  jwks, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
  scope: 'system/Patient.read system/Patient.rs',
});
const secretClient = (client_id) => ({
  client_id, client_secret: config.secrets[client_id], token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'system/Patient.read',
});

function dualOptions() {
  const firstParty = new Set(dual.firstParty || []);
  return {
    conformIdTokenClaims: false, // fhirUser in the id_token (SMART App Launch)
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, fhirUser: `${config.fhirBaseUrl}/Patient/${id}` }),
    }),
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const clientId = oidc.client.clientId;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
      if (grantId) return oidc.provider.Grant.find(grantId);
      if (!firstParty.has(clientId) || !oidc.session.accountId) return undefined;
      const grant = new oidc.provider.Grant({ clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      const resourceScopes = [...oidc.requestParamScopes].filter((s) => RESOURCE_SCOPES.includes(s));
      if (resourceScopes.length) grant.addResourceScope(config.fhirBaseUrl, resourceScopes.join(' '));
      await grant.save();
      return grant;
    },
  };
}

const stats = { introspection: {}, token: {} };
const count = (kind, id) => { stats[kind][id] = (stats[kind][id] || 0) + 1; };

const provider = new Provider(issuer, {
  clients: [
    appClient('app'), appClient('app-short'),
    backendClient('imaging-server', config.backendJwks, 'ES384'),
    backendClient('imaging-server-rs', config.backendRsaJwks, 'RS384'),
    secretClient('imaging-secret'), secretClient('ehr'),
    ...(dual ? dual.clients || [] : []),
    ...(config.extraClients || []),
  ],
  jwks: config.providerJwks,
  scopes: [...OIDC_SCOPES, ...RESOURCE_SCOPES],
  claims: dual ? { openid: ['sub'], fhirUser: ['fhirUser'] } : { openid: ['sub'] },
  ...(dual ? dualOptions() : {}),
  cookies: { keys: ['smart-imaging-test-cookie-key'] },
  enabledJWA: {
    clientAuthSigningAlgValues: ['ES384', 'RS384', 'ES256', 'RS256', 'PS256'],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.fhirBaseUrl,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: RESOURCE_SCOPES.join(' '),
        audience: resource === JWT_RESOURCE ? config.fhirBaseUrl : resource,
        accessTokenFormat: resource === JWT_RESOURCE ? 'jwt' : 'opaque',
        ...(resource === JWT_RESOURCE ? { jwt: { sign: { alg: 'RS256' } } } : {}),
      }),
    },
  },
  ttl: {
    AccessToken: (ctx, token, client) => (client && client.clientId === 'app-short' ? 2 : 3600),
    ClientCredentials: () => 600,
  },
  extraTokenClaims: (ctx, token) => {
    if (token.accountId && accounts[token.accountId]) return accounts[token.accountId];
    // login_hint "no-patient" or "nopatient:ID": a token without a patient claim
    return token.accountId && !token.accountId.startsWith('no') ? { patient: token.accountId } : undefined;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
});

if (dual && dual.hintAnyAudience) {
  // SMART dual launch: the imaging server forwards the app's id_token (aud = the app) as its own
  // id_token_hint. Validate it as an id_token of whichever registered client it names.
  const validate = provider.IdToken.validate.bind(provider.IdToken);
  provider.IdToken.validate = async (jwt, client) => {
    try {
      return await validate(jwt, client);
    } catch (err) {
      let aud;
      try {
        aud = JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString()).aud;
      } catch { throw err; }
      const other = await provider.Client.find(String(Array.isArray(aud) ? aud[0] : aud));
      if (!other) throw err;
      return validate(jwt, other);
    }
  };
}

const readForm = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(new URLSearchParams(data)));
  req.on('error', reject);
});

const loginForm = (uid) => `<!DOCTYPE html><html><body><h1>EHR sign-in</h1>
<form method="post" action="/interaction/${uid}"><input name="account" value="">
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="deny">Deny</button></form></body></html>`;

// Test-only: finish every interaction at once. login_hint is the patient id (the account);
// every requested scope is granted.
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/stats') {
    ctx.body = stats;
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token/introspection') {
    await next();
    count('introspection', ctx.oidc?.client?.clientId || 'unauthenticated');
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token') {
    await next();
    count('token', ctx.oidc?.client?.clientId || 'unauthenticated');
    if (dual && ctx.status === 200 && ctx.body && ctx.body.access_token) {
      const token = await provider.AccessToken.find(ctx.body.access_token);
      if (token && token.accountId && !token.accountId.startsWith('no')) ctx.body.patient = token.accountId;
    }
    return;
  }
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login' && dual && dual.interactiveLogin && !params.login_hint) {
    if (ctx.method !== 'POST') {
      ctx.type = 'html';
      ctx.body = loginForm(match[1]);
      return;
    }
    const form = await readForm(ctx.req);
    const result = form.get('action') === 'deny'
      ? { error: 'access_denied', error_description: 'the user denied the sign-in' }
      : { login: { accountId: String(form.get('account') || 'no-patient') } };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  if (prompt.name === 'login') {
    const accountId = String(params.login_hint || 'no-patient');
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  ctx.respond = false;
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
