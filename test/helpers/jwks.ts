import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { TokenGrant } from '../../src/auth/Tokens.ts';

type Alg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
type SigningKey = { kid: string; alg: Alg; privateKey: CryptoKey; jwk: JWK };

/**
 * An identity provider's key set, served over HTTP as Auth0 or Keycloak serve theirs: keys by `kid`, a
 * rotation that replaces them, a delay to make fetches time out, and a count of fetches.
 */
export class KeySetServer {
  readonly #server: Server;
  #keys: SigningKey[] = [];
  fetches = 0;
  delayMs = 0;
  url = '';

  private constructor() {
    this.#server = createServer((_request, response) => {
      this.fetches++;
      const body = JSON.stringify({ keys: this.#keys.map((k) => k.jwk) });
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' }).end(body);
      }, this.delayMs);
    });
  }

  static async start(algs: readonly Alg[] = ['RS256']): Promise<KeySetServer> {
    const set = new KeySetServer();
    await set.rotate(algs);
    await new Promise<void>((resolve) => set.#server.listen(0, '127.0.0.1', resolve));
    set.url = `http://127.0.0.1:${(set.#server.address() as AddressInfo).port}/.well-known/jwks.json`;
    return set;
  }

  /** Replaces every key with fresh ones (new kids): tokens signed before no longer verify. */
  async rotate(algs: readonly Alg[] = ['RS256']): Promise<void> {
    this.#keys = await Promise.all(
      algs.map(async (alg) => {
        const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
        const kid = `${alg.toLowerCase()}-${Math.random().toString(36).slice(2, 10)}`;
        return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
      }),
    );
  }

  /** The public key (JWK) of `alg`, e.g. to try it as an HMAC secret. */
  publicJwk(alg: Alg = 'RS256'): JWK {
    const key = this.#keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`no ${alg} key in the set`);
    return key.jwk;
  }

  /** A token signed by the current key of `alg` (`exp` in seconds, as RFC 7519). */
  async sign(
    claims: { sub: string; grants: readonly TokenGrant[]; exp?: number; iss?: string; aud?: string },
    alg: Alg = 'RS256',
  ): Promise<string> {
    const key = this.#keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`no ${alg} key in the set`);
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
