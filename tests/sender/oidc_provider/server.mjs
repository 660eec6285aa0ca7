// A real authorization server for jwkguard's introspection tests: node-oidc-provider on
// 127.0.0.1 with client credentials, RFC 7662 introspection, RFC 7009 revocation and RFC 8707
// resource indicators (JWT access tokens for one resource, opaque ones for another).
// Usage: node server.mjs <port> ; prints "ready <issuer>" once listening.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' };

const JWT_RESOURCE = 'https://api.example.com';
const OPAQUE_RESOURCE = 'https://opaque.example.com';

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'resource-server',
      client_secret: 'rs-secret-for-tests',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'app',
      client_secret: 'app-secret-for-tests',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'orders:read',
    },
  ],
  scopes: ['openid', 'orders:read'],
  jwks: { keys: [jwk] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => JWT_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'orders:read',
        audience: resource,
        accessTokenTTL: 600,
        accessTokenFormat: resource === OPAQUE_RESOURCE ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.proxy = false;
const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
