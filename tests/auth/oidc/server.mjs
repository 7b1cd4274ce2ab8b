// A real, independent OAuth2 / OpenID provider (oidc-provider) for the SMART authorizer tests.
// Usage: node server.mjs CONFIG.json   (written by tests/auth/oidc_fixture.py)
// Config: { port, fhirBaseUrl, providerJwks, backendJwks, backendRsaJwks, secrets: {id: secret} }
// Prints "listening <issuer>" when ready. Test-only helpers under /test/:
//   GET /test/stats -> counts of introspection and token requests by client.
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
const APP_SCOPE = ['openid', ...RESOURCE_SCOPES].join(' ');
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

const stats = { introspection: {}, token: {} };
const count = (kind, id) => { stats[kind][id] = (stats[kind][id] || 0) + 1; };

const provider = new Provider(issuer, {
  clients: [
    appClient('app'), appClient('app-short'),
    backendClient('imaging-server', config.backendJwks, 'ES384'),
    backendClient('imaging-server-rs', config.backendRsaJwks, 'RS384'),
    secretClient('imaging-secret'), secretClient('ehr'),
  ],
  jwks: config.providerJwks,
  scopes: ['openid', 'offline_access', ...RESOURCE_SCOPES],
  claims: { openid: ['sub'] },
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
  extraTokenClaims: (ctx, token) => (
    // login_hint "no-patient" or "nopatient:ID": a token without a patient claim
    token.accountId && !token.accountId.startsWith('no') ? { patient: token.accountId } : undefined
  ),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
});

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
    return;
  }
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
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
